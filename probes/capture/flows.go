// Package capture is netsleuth's packet-capture core: it builds kernel BPF
// filters from a small spec (and renders the tcpdump expression that means
// the same), captures from one interface into a bounded pcap stream, decodes
// pcap and pcapng files into a table of bidirectional flows, and classifies
// each flow in the words a person debugging a network would use ("SYN
// answered by RST", "ICMP port unreachable from 10.0.0.1", "reply seen on
// cni0 but not on veth1"). Everything but live capture is pure: tables in,
// verdicts out. It is plain Go (no cgo, no libpcap) and imports nothing from
// the rest of netsleuth.
package capture

import (
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Proto is the IP protocol of a flow (the IPv4 protocol or IPv6 next header).
type Proto uint8

// The protocols netsleuth decodes; others are kept by number.
const (
	ProtoICMP   Proto = 1
	ProtoTCP    Proto = 6
	ProtoUDP    Proto = 17
	ProtoICMPv6 Proto = 58
)

// String names the protocol as tcpdump does.
func (p Proto) String() string {
	switch p {
	case ProtoICMP:
		return "icmp"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMPv6:
		return "icmp6"
	}
	return "proto-" + strconv.Itoa(int(p))
}

// TCPFlags is a bitmask of TCP flags, in header order (FIN is bit 0).
type TCPFlags uint8

// The TCP flags.
const (
	FlagFIN TCPFlags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

var flagNames = [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// String lists the flags that are set, e.g. "SYN|ACK", or "" for none.
func (f TCPFlags) String() string {
	var b strings.Builder
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(n)
		}
	}
	return b.String()
}

// Key identifies a flow in both directions: the same Key comes from a packet
// and from its reply. A is the lower endpoint of the two; for ICMP echo both
// ports hold the echo identifier, for other ICMP and other protocols they are 0.
type Key struct {
	Proto Proto
	A, B  netip.AddrPort
}

// String renders the key as "tcp 10.0.0.1:80 <-> 10.0.0.2:34567".
func (k Key) String() string {
	return k.Proto.String() + " " + k.A.String() + " <-> " + k.B.String()
}

// Direction is what one side of a flow sent.
type Direction struct {
	// Bytes adds up frame lengths (the length on the wire, as tshark's
	// conversation tables count them), not the captured part.
	Bytes uint64
	// Payload adds up the TCP or UDP payload bytes.
	Payload uint64
	Packets uint32
	// Retransmits counts repeated SYNs and data segments whose sequence
	// range this direction had already sent.
	Retransmits uint32
	// SYNs counts segments with SYN set (a SYN-ACK counts for the responder).
	SYNs uint16
	// Flags is every TCP flag seen in this direction.
	Flags TCPFlags

	seqOK    bool   // nextSeq is known
	nextSeq  uint32 // one past the highest sequence number sent
	synSeq   uint32 // sequence number of the first SYN
	firstAck uint32 // acknowledgement number of the first segment with ACK (Flags has ACK)
}

// ICMPErrorKind is what an ICMP or ICMPv6 error message said about a flow.
type ICMPErrorKind uint8

// The ICMP errors netsleuth tells apart.
const (
	UnreachNet ICMPErrorKind = iota + 1
	UnreachHost
	UnreachProto
	UnreachPort
	UnreachAdmin
	FragNeeded // IPv4 fragmentation needed, or ICMPv6 packet too big
	TimeExceeded
	ParamProblem
	UnreachOther
)

var icmpKindNames = [...]string{"", "network", "host", "protocol", "port", "administratively prohibited",
	"fragmentation needed", "time exceeded", "parameter problem", "unreachable"}

// String names the error as a person would: "port", "host", "time exceeded".
func (k ICMPErrorKind) String() string {
	if int(k) < len(icmpKindNames) {
		return icmpKindNames[k]
	}
	return "unknown"
}

// ICMPError is the last ICMP error that concerned a flow.
type ICMPError struct {
	Kind ICMPErrorKind
	// Type and Code are the message's own (ICMPv4 or ICMPv6 numbering).
	Type, Code uint8
	V6         bool
	// From is the router or host that sent the error.
	From netip.Addr
	// MTU is the next-hop MTU of a fragmentation-needed or packet-too-big
	// message, 0 otherwise.
	MTU uint32
	// Count is how many errors concerned the flow; Time is the last one's.
	Count int
	Time  time.Time
}

// DNSAnswer is one A, AAAA or CNAME record of a response.
type DNSAnswer struct {
	Type layers.DNSType
	// Addr is the address of an A or AAAA record.
	Addr netip.Addr
	// Target is the name a CNAME points to.
	Target string
}

// String renders the record's data: an address or "CNAME name".
func (a DNSAnswer) String() string {
	if a.Type == layers.DNSTypeCNAME {
		return "CNAME " + a.Target
	}
	return a.Addr.String()
}

// MaxDNSAnswers bounds the answers kept of a response.
const MaxDNSAnswers = 4

// maxPending bounds the query IDs a flow tracks while waiting for answers.
const maxPending = 8

// DNSInfo is what a flow to or from port 53 said in DNS.
type DNSInfo struct {
	// Name and Type are the question of the last query or response.
	Name string
	Type layers.DNSType
	// Queries and Responses count messages; Answered counts queries whose
	// ID a response carried, Unanswered the query IDs no response carried.
	Queries, Responses, Answered, Unanswered int
	// Rcode is that of the last response, AnswerCount the number of its
	// A, AAAA and CNAME records (Answers keeps the first MaxDNSAnswers).
	Rcode       layers.DNSResponseCode
	AnswerCount int
	// Truncated is set when a response had the TC bit.
	Truncated bool

	answers    *[MaxDNSAnswers]DNSAnswer // from the table's slab, once a response has some
	pending    [maxPending]uint16
	pendingSet uint32 // bit i: pending[i] is in use
	overflow   int    // queries waiting that pending had no room for
}

// Answers are the first MaxDNSAnswers A, AAAA and CNAME records of the
// last response.
func (d *DNSInfo) Answers() []DNSAnswer {
	if d.answers == nil {
		return nil
	}
	return d.answers[:min(d.AnswerCount, MaxDNSAnswers)]
}

// Flow is one bidirectional conversation: a TCP connection, a UDP 5-tuple,
// an ICMP echo identifier, or the other traffic of a protocol between two
// addresses. It is kept compact (a capture can hold hundreds of thousands):
// endpoints and times are stored raw and read through methods.
type Flow struct {
	// Iface is the label of the capture the flow was seen in.
	Iface string
	// Fwd is what the client sent, Rev what the server sent.
	Fwd, Rev Direction
	// ICMP is the last ICMP error about this flow, nil without one.
	ICMP *ICMPError
	// DNS is set for flows to or from port 53 that carried DNS.
	DNS *DNSInfo
	// ICMPType is the ICMP type of a flow made of ICMP messages other than
	// echo (errors are also recorded on the flow they concern).
	ICMPType uint8
	// IsEcho marks an ICMP echo flow (ports are the identifier).
	IsEcho bool

	// alias is, on a joined flow, the record of its reply half: the same
	// connection seen on the same interface under translated addresses.
	alias *Flow

	proto            Proto
	cli, srv         [16]byte // client and server addresses, IPv4 mapped
	cliPort, srvPort uint16
	first, last      int64 // Unix nanoseconds
}

// Client is the initiator: the first packet's source, or the SYN sender.
func (f *Flow) Client() netip.AddrPort { return netip.AddrPortFrom(addrOf(f.cli), f.cliPort) }

// Server is the other end.
func (f *Flow) Server() netip.AddrPort { return netip.AddrPortFrom(addrOf(f.srv), f.srvPort) }

// Key is the flow's key, the same from either direction.
func (f *Flow) Key() Key { return makeKey(f.proto, f.cli, f.srv, f.cliPort, f.srvPort).public() }

// Proto is the flow's IP protocol.
func (f *Flow) Proto() Proto { return f.proto }

// First and Last are when the flow's first and last packets were seen
// (for a flow known only from an ICMP error, when that error was).
func (f *Flow) First() time.Time { return time.Unix(0, f.first).UTC() }

// Last is when the flow's last packet was seen.
func (f *Flow) Last() time.Time { return time.Unix(0, f.last).UTC() }

// Packets is the total of both directions.
func (f *Flow) Packets() uint64 { return uint64(f.Fwd.Packets) + uint64(f.Rev.Packets) }

// Bytes is the total of both directions.
func (f *Flow) Bytes() uint64 { return f.Fwd.Bytes + f.Rev.Bytes }

// RST reports whether either side sent a TCP reset.
func (f *Flow) RST() bool { return (f.Fwd.Flags|f.Rev.Flags)&FlagRST != 0 }

// Retransmits is the total of both directions.
func (f *Flow) Retransmits() uint32 { return f.Fwd.Retransmits + f.Rev.Retransmits }

// swap makes the server the client, when the SYN shows the first packet
// seen came from the responder.
func (f *Flow) swap() {
	f.Fwd, f.Rev = f.Rev, f.Fwd
	f.cli, f.srv = f.srv, f.cli
	f.cliPort, f.srvPort = f.srvPort, f.cliPort
}

// slabChunk is how many records one allocation holds.
const slabChunk = 1024

// slab hands out records from chunks that never move, so pointers stay
// valid and a Reset table reuses them without allocating.
type slab[T any] struct {
	chunks []*[slabChunk]T
	n      int
	used   int // records ever handed out: those past it are still zero
}

func (s *slab[T]) alloc() *T {
	c := s.n / slabChunk
	if c == len(s.chunks) {
		s.chunks = append(s.chunks, new([slabChunk]T))
	}
	p := &s.chunks[c][s.n%slabChunk]
	s.n++
	if s.n <= s.used { // a record of before a Reset
		var zero T
		*p = zero
	}
	s.used = max(s.used, s.n)
	return p
}

func (s *slab[T]) at(i int) *T { return &s.chunks[i/slabChunk][i%slabChunk] }

// Flows returns every flow in the order it was first seen, the two halves
// of a connection seen before and after an address translation joined
// into one (join.go).
func (t *Table) Flows() []*Flow { return slices.Clone(t.joinedView().flows) }

// Len is the number of flows Flows returns.
func (t *Table) Len() int { return len(t.joinedView().flows) }

// Lookup returns the flow of a key, nil when there is none. The key of
// either half of a joined flow finds the joined flow.
func (t *Table) Lookup(k Key) *Flow {
	a, b := k.A.Addr().As16(), k.B.Addr().As16()
	pa, pb := k.A.Port(), k.B.Port()
	i, _, _ := t.index.find(&t.flows, flowHash(k.Proto, &a, pa, &b, pb), k.Proto, &a, pa, &b, pb)
	if i < 0 {
		return nil
	}
	f := t.flows.at(i)
	if j := t.joinedView().of[f]; j != nil {
		return j
	}
	return f
}

// rawFlows returns every flow record in the order it was first seen,
// each 5-tuple on its own.
func (t *Table) rawFlows() []*Flow {
	out := make([]*Flow, t.flows.n)
	for i := range out {
		out[i] = t.flows.at(i)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].first < out[j].first })
	return out
}

// Conversation is the traffic between two IP addresses, every protocol and
// port together, as tshark's "-z conv,ip" shows it.
type Conversation struct {
	A, B               netip.Addr // A < B
	PacketsAB, BytesAB uint64     // A to B
	PacketsBA, BytesBA uint64     // B to A
}

// Conversations adds up the flows per address pair, sorted by address. An
// address talking to itself has no direction: its traffic counts as A to
// B, as tshark counts it. It counts each 5-tuple as captured: the halves
// of a joined flow are counted under their own addresses, as tshark does.
func (t *Table) Conversations() []Conversation {
	type pair struct{ a, b netip.Addr }
	m := map[pair]*Conversation{}
	for i := range t.flows.n {
		f := t.flows.at(i)
		if f.Packets() == 0 {
			continue
		}
		c, s := addrOf(f.cli), addrOf(f.srv)
		cs, sc := f.Fwd, f.Rev
		if s.Less(c) {
			c, s, cs, sc = s, c, sc, cs
		}
		if c == s {
			cs.Packets, cs.Bytes, sc = cs.Packets+sc.Packets, cs.Bytes+sc.Bytes, Direction{}
		}
		conv := m[pair{c, s}]
		if conv == nil {
			conv = &Conversation{A: c, B: s}
			m[pair{c, s}] = conv
		}
		conv.PacketsAB += uint64(cs.Packets)
		conv.BytesAB += cs.Bytes
		conv.PacketsBA += uint64(sc.Packets)
		conv.BytesBA += sc.Bytes
	}
	out := make([]Conversation, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].A != out[j].A {
			return out[i].A.Less(out[j].A)
		}
		return out[i].B.Less(out[j].B)
	})
	return out
}
