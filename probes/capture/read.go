package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// readBuffer is the size of the buffered reader in front of a capture.
const readBuffer = 1 << 20

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

// packetSource is what pcapgo's Reader and NgReader have in common.
type packetSource interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
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
	src, err := openSource(r, name)
	if err != nil {
		return 0, err
	}
	lt := src.LinkType()
	if lt != layers.LinkTypeEthernet && lt != layers.LinkTypeLinuxSLL {
		return 0, fmt.Errorf("%s has link type %d (%s); netsleuth reads Ethernet and Linux cooked captures only", name, lt, lt)
	}
	t.setLinkType(lt)
	n := 0
	for max <= 0 || n < max {
		data, ci, err := src.ZeroCopyReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, readError(name, n, err)
		}
		t.Add(data, ci)
		n++
	}
	return n, nil
}

// readError words a failure to read packet n+1 of a stream.
func readError(name string, n int, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s is truncated after packet %d: %w", name, n, err)
	}
	return fmt.Errorf("%s is damaged after packet %d: %w", name, n, err)
}

// openSource detects the format from the magic number and opens a reader.
func openSource(r io.Reader, name string) (packetSource, error) {
	br := bufio.NewReaderSize(r, readBuffer)
	head, _ := br.Peek(4)
	if len(head) >= 2 && binary.LittleEndian.Uint16(head) == magicGzip {
		src, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s is gzip-compressed but holds no readable pcap: %w", name, err)
		}
		return src, nil
	}
	if len(head) < 4 {
		return nil, fmt.Errorf("%s is too short to be a pcap or pcapng file (%d bytes)", name, len(head))
	}
	switch m := binary.LittleEndian.Uint32(head); m {
	case magicPcapMicro, magicPcapNano, magicPcapMicroSwap, magicPcapNanoSwap:
		src, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s has a damaged pcap header: %w", name, err)
		}
		return src, nil
	case magicPcapng:
		src, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("%s has a damaged pcapng header: %w", name, err)
		}
		return src, nil
	default:
		return nil, fmt.Errorf("%s is not a pcap or pcapng file (it starts with %#08x)", name, m)
	}
}
