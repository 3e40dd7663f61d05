package capture

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/bpf"
)

// Bounds of a live capture. A capture always stops: at Duration, at
// MaxPackets, or at MaxBytes of pcap output, whichever comes first.
const (
	DefaultDuration   = 30 * time.Second
	MaxDuration       = time.Hour
	DefaultMaxPackets = 100_000
	DefaultMaxBytes   = 256 << 20
	DefaultSnapLen    = FilterSnapLen
)

// pcap record overheads: the file header and each packet's record header.
const (
	pcapFileHeader   = 24
	pcapRecordHeader = 16
)

// Options are one live capture. Duration and MaxPackets must be set (use
// DefaultDuration and DefaultMaxPackets); MaxBytes 0 means DefaultMaxBytes
// and SnapLen 0 means DefaultSnapLen.
type Options struct {
	// Iface is the interface to capture on, e.g. "eth0" or "veth1".
	Iface string
	// Filter is the kernel filter (FilterSpec.Assemble); nil admits everything.
	Filter []bpf.RawInstruction
	// SnapLen is how much of each packet to keep.
	SnapLen    int
	MaxPackets int
	// MaxBytes bounds the pcap output, headers included.
	MaxBytes int64
	Duration time.Duration
}

// Stats is what a capture did.
type Stats struct {
	// Packets and Bytes are what was written (Bytes: the whole pcap stream).
	Packets int   `json:"packets"`
	Bytes   int64 `json:"bytes"`
	// DroppedByBound counts packets the filter admitted that were not
	// written because a bound was reached (read, or left in the socket).
	DroppedByBound int `json:"droppedByBound"`
	// KernelPackets and KernelDrops are the socket's counts: packets the
	// filter admitted, and those the kernel dropped for want of buffer.
	KernelPackets uint64 `json:"kernelPackets"`
	KernelDrops   uint64 `json:"kernelDrops"`
	// Stopped says which bound ended the capture: "duration", "packets",
	// "bytes" or "cancelled".
	Stopped string `json:"stopped"`
}

// validate fills the defaults and rejects unbounded or impossible options.
func (o Options) validate() (Options, error) {
	switch {
	case o.Iface == "":
		return o, errors.New("capture needs an interface name")
	case o.Duration <= 0:
		return o, fmt.Errorf("capture needs a duration above 0 (e.g. capture.DefaultDuration, %v)", DefaultDuration)
	case o.Duration > MaxDuration:
		return o, fmt.Errorf("capture duration %v is longer than the %v allowed", o.Duration, MaxDuration)
	case o.MaxPackets <= 0:
		return o, fmt.Errorf("capture needs a packet bound above 0 (e.g. capture.DefaultMaxPackets, %d)", DefaultMaxPackets)
	case o.MaxBytes < 0 || o.SnapLen < 0:
		return o, errors.New("capture byte bound and snap length cannot be negative")
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SnapLen == 0 || o.SnapLen > DefaultSnapLen {
		o.SnapLen = DefaultSnapLen
	}
	if o.MaxBytes < pcapFileHeader {
		return o, fmt.Errorf("capture byte bound %d is smaller than a pcap file header", o.MaxBytes)
	}
	return o, nil
}

// boundedWriter writes pcap records until a bound is reached.
type boundedWriter struct {
	w     *pcapgo.Writer
	opts  Options
	stats *Stats
}

// newBoundedWriter writes the pcap file header (Ethernet) to w.
func newBoundedWriter(w io.Writer, opts Options, stats *Stats) (*boundedWriter, error) {
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(uint32(opts.SnapLen), layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("write pcap header: %w", err)
	}
	stats.Bytes = pcapFileHeader
	return &boundedWriter{w: pw, opts: opts, stats: stats}, nil
}

// write appends one packet; full is true once no more may be written (the
// packet that did not fit is counted in DroppedByBound).
func (b *boundedWriter) write(ci gopacket.CaptureInfo, data []byte) (full bool, err error) {
	s := b.stats
	if s.Packets >= b.opts.MaxPackets {
		s.DroppedByBound++
		s.Stopped = "packets"
		return true, nil
	}
	size := int64(pcapRecordHeader + len(data))
	if s.Bytes+size > b.opts.MaxBytes {
		s.DroppedByBound++
		s.Stopped = "bytes"
		return true, nil
	}
	ci.CaptureLength = len(data)
	if ci.Length < len(data) {
		ci.Length = len(data)
	}
	if err := b.w.WritePacket(ci, data); err != nil {
		return true, fmt.Errorf("write pcap: %w", err)
	}
	s.Packets++
	s.Bytes += size
	if s.Packets >= b.opts.MaxPackets {
		s.Stopped = "packets"
		return true, nil
	}
	return false, nil
}
