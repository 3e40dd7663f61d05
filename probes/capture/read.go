package capture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gopacket/gopacket/layers"
)

// readBuffer is the size of the record reader's buffer: small enough that
// the records it was just filled with are still in the CPU's cache when
// they are decoded, large enough that refilling it is rare.
const readBuffer = 256 << 10

// File-format magic numbers, as the first four bytes read little-endian.
const (
	magicPcapMicro     = 0xa1b2c3d4
	magicPcapNano      = 0xa1b23c4d
	magicPcapMicroSwap = 0xd4c3b2a1
	magicPcapNanoSwap  = 0x4d3cb2a1
	magicPcapng        = 0x0a0d0d0a
	magicGzip          = 0x8b1f // first two bytes
)

// ReadOptions name and bound what Analyze reads.
type ReadOptions struct {
	// Iface labels the capture's flows; the file's base name by default.
	Iface string
	// MaxPackets stops reading after so many packets; 0 reads everything.
	MaxPackets int
}

// AnalyzeFile reads a pcap or pcapng file (gzip-compressed pcap too) into
// a new flow table. Its errors are one sentence naming the file.
func AnalyzeFile(path string, opts ReadOptions) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read capture: %w", err)
	}
	defer f.Close()
	if opts.Iface == "" {
		opts.Iface = filepath.Base(path)
	}
	t := NewTable(opts.Iface)
	if _, err := t.ReadCapture(f, filepath.Base(path), opts.MaxPackets); err != nil {
		return t, err
	}
	return t, nil
}

// Analyze reads a pcap or pcapng stream into a new flow table; name is
// what errors call the stream ("capture" when empty).
func Analyze(r io.Reader, name string, opts ReadOptions) (*Table, error) {
	if name == "" {
		name = "capture"
	}
	if opts.Iface == "" {
		opts.Iface = name
	}
	t := NewTable(opts.Iface)
	if _, err := t.ReadCapture(r, name, opts.MaxPackets); err != nil {
		return t, err
	}
	return t, nil
}

// ReadCapture adds every packet of a pcap or pcapng stream to the table and
// returns how many it read; max > 0 stops after max packets. On an error
// the packets read so far stay in the table. name is what errors call the
// stream, e.g. "capture.pcap is truncated after packet 1234: unexpected EOF".
func (t *Table) ReadCapture(r io.Reader, name string, max int) (int, error) {
	src := &t.rr
	defer func() { src.r = nil }() // the table keeps the buffer, not the stream
	if err := src.open(r); err != nil {
		return 0, fmt.Errorf("%s %w", name, err)
	}
	if err := t.useLink(src.link, name); err != nil {
		return 0, err
	}
	n := 0
	var rec record
	for max <= 0 || n < max {
		err := src.next(&rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, readError(name, n, err)
		}
		if rec.link != t.link {
			if err := t.useLink(rec.link, name); err != nil {
				return n, err
			}
		}
		t.add(rec.data, rec.wire, rec.ts)
		n++
	}
	return n, nil
}

// useLink makes the decoder start at the layer of link type lt, one of
// those it reads.
func (t *Table) useLink(lt layers.LinkType, name string) error {
	if lt != layers.LinkTypeEthernet && lt != layers.LinkTypeLinuxSLL {
		return fmt.Errorf("%s has link type %d (%s); netsleuth reads Ethernet and Linux cooked captures only", name, lt, lt)
	}
	t.setLinkType(lt)
	return nil
}

// readError words a failure to read packet n+1 of a stream.
func readError(name string, n int, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s is truncated after packet %d: %w", name, n, err)
	}
	return fmt.Errorf("%s is damaged after packet %d: %w", name, n, err)
}
