package capture

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Packet is one frame of a flow, as a packet list shows it.
type Packet struct {
	Time time.Time
	// FromClient is set when the flow's client sent the packet.
	FromClient bool
	Iface      string
	// Length is the frame's length on the wire.
	Length  uint64
	Summary string // "SYN seq=1 len=0", "DNS query", "ICMP type 3"
}

// summary words what the decoder took from a packet.
func (p *pkt) summary(f *Flow) string {
	switch {
	case p.proto == ProtoTCP:
		fl := p.flags.String()
		if fl == "" {
			fl = "no flags"
		}
		return fmt.Sprintf("%s seq=%d len=%d", fl, p.seq, p.payload)
	case p.proto == ProtoUDP && (p.sport == 53 || p.dport == 53):
		if p.sport == 53 {
			return fmt.Sprintf("DNS response len=%d", p.payload)
		}
		return fmt.Sprintf("DNS query len=%d", p.payload)
	case p.proto == ProtoUDP:
		return fmt.Sprintf("UDP len=%d", p.payload)
	case p.echo:
		return fmt.Sprintf("%s echo id=%d", p.proto, p.sport)
	case p.proto == ProtoICMP || p.proto == ProtoICMPv6:
		if p.icmpErr && f != nil && f.ICMP != nil {
			return fmt.Sprintf("%s %s error from %s", p.proto, f.ICMP.Kind, addrOf(p.src))
		}
		return fmt.Sprintf("%s type %d", p.proto, p.icmpType)
	}
	return p.proto.String()
}

// PacketsOf reads the pcap or pcapng file at path and returns the packets
// of the flow k, at most max (0: all), in capture order. iface labels the
// packets as Analyze's ReadOptions.Iface labels the flows. ICMP errors about
// the flow are listed too: they are what says why it failed. The packets of
// a flow joined from two halves (join.go) are those of both: the file is
// read twice, first to find the flow's halves.
func PacketsOf(path, iface string, k Key, max int) ([]Packet, error) {
	if iface == "" {
		iface = filepath.Base(path)
	}
	t, err := AnalyzeFile(path, ReadOptions{Iface: iface})
	if t == nil {
		return nil, err
	}
	var alias Key
	if f := t.Lookup(k); f != nil {
		k = f.Key()
		if f.alias != nil {
			alias = f.alias.Key()
		}
	}
	r, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read capture: %w", err)
	}
	defer r.Close()
	return packetsOf(r, filepath.Base(path), iface, k, alias, max)
}

// packetsOf reads the packets of flow k and of its reply half alias (the
// zero Key for none) from r.
func packetsOf(r io.Reader, name, iface string, k, alias Key, max int) ([]Packet, error) {
	t := NewTable(iface)
	var out []Packet
	t.onPacket = func(f *Flow, p *pkt) {
		if max > 0 && len(out) >= max {
			return
		}
		fk := f.Key()
		if fk != k && (fk != alias || alias == Key{}) {
			return
		}
		out = append(out, Packet{Time: time.Unix(0, p.ts).UTC(), FromClient: fk == k && p.src == f.cli && p.sport == f.cliPort,
			Iface: iface, Length: p.wire, Summary: p.summary(f)})
	}
	_, err := t.ReadCapture(r, name, 0)
	return out, err
}
