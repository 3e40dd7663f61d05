package capture

import (
	"encoding/binary"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// DecodeStats counts what a Table was fed.
type DecodeStats struct {
	// Packets and Bytes count every frame (Bytes as frame lengths).
	Packets, Bytes uint64
	// NonIP counts frames without an IPv4 or IPv6 header (ARP, LLDP, ...).
	NonIP uint64
	// Malformed counts IP packets whose transport or DNS header did not
	// decode; they are still counted on a flow, by address and protocol.
	Malformed uint64
}

// flowKey is the canonical form of Key used in the hot path: addresses as
// 16 bytes (IPv4 mapped), the lower endpoint first. It holds no pointers,
// so hashing it is a plain memory hash.
type flowKey struct {
	a, b   [16]byte
	pa, pb uint16
	proto  Proto
}

// less orders endpoints by address, then port.
func less(a [16]byte, pa uint16, b [16]byte, pb uint16) bool {
	ah, bh := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	if ah != bh {
		return ah < bh
	}
	al, bl := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:])
	if al != bl {
		return al < bl
	}
	return pa < pb
}

func makeKey(proto Proto, src, dst [16]byte, sport, dport uint16) flowKey {
	if less(dst, dport, src, sport) {
		return flowKey{a: dst, b: src, pa: dport, pb: sport, proto: proto}
	}
	return flowKey{a: src, b: dst, pa: sport, pb: dport, proto: proto}
}

func addrOf(b [16]byte) netip.Addr { return netip.AddrFrom16(b).Unmap() }

func (k flowKey) public() Key {
	return Key{Proto: k.proto, A: netip.AddrPortFrom(addrOf(k.a), k.pa), B: netip.AddrPortFrom(addrOf(k.b), k.pb)}
}

// pkt is what the decoder took from one frame.
type pkt struct {
	src, dst     [16]byte
	sport, dport uint16
	proto        Proto
	flags        TCPFlags
	seq, ack     uint32
	payload      int
	wire         uint64
	ts           int64 // Unix nanoseconds
	echo         bool  // ICMP echo request or reply; ports hold the id
	icmpType     uint8 // other ICMP messages
	icmpErr      bool
}

// decoder holds the reused layers of one table: decoding a packet
// allocates nothing.
type decoder struct {
	parser  *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	eth     layers.Ethernet
	sll     layers.LinuxSLL
	vlan    layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     tcpLayer
	udp     udpLayer
	icmp4   layers.ICMPv4
	icmp6   layers.ICMPv6
	dns     layers.DNS
}

// tcpLayer is TCP that hands nothing on: gopacket would read a port 53
// payload as DNS without its length prefix (tcpDNS reads it instead).
type tcpLayer struct{ layers.TCP }

// NextLayerType ends decoding at TCP.
func (*tcpLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

// udpLayer is UDP that hands a datagram to DNS when either port is 53,
// and nothing else on (no tunnels or other applications are decoded).
type udpLayer struct{ layers.UDP }

// NextLayerType is DNS for port 53.
func (u *udpLayer) NextLayerType() gopacket.LayerType {
	if u.SrcPort == 53 || u.DstPort == 53 {
		return layers.LayerTypeDNS
	}
	return gopacket.LayerTypePayload
}

func (d *decoder) init(first gopacket.LayerType) {
	d.parser = gopacket.NewDecodingLayerParser(first)
	d.parser.SetDecodingLayerContainer(gopacket.DecodingLayerSparse(nil))
	for _, l := range []gopacket.DecodingLayer{&d.eth, &d.sll, &d.vlan, &d.ip4, &d.ip6,
		&d.tcp, &d.udp, &d.icmp4, &d.icmp6, &d.dns} {
		d.parser.AddDecodingLayer(l)
	}
	d.parser.IgnoreUnsupported = true
	d.decoded = make([]gopacket.LayerType, 0, 16)
}

// Table is a flow table: feed it frames with Add (or a whole file with
// ReadCapture) and read the flows. It is not safe for concurrent use.
type Table struct {
	// Iface labels the capture; every new flow carries it.
	Iface string
	Stats DecodeStats

	index flowIndex
	flows slab[Flow]
	icmps slab[ICMPError]
	dnss  slab[DNSInfo]
	ans   slab[[MaxDNSAnswers]DNSAnswer]
	names map[string]string
	dec   decoder
	cur   pkt          // the packet being added (a field: a local would escape to onPacket)
	rr    recordReader // reused by every ReadCapture, with its buffer
	link  layers.LinkType
	view  *flowView // Flows' joined view, built on first use after a change
	// onPacket, when set, sees every IP packet with the flow it was
	// counted on (PacketsOf lists one flow's packets with it).
	onPacket func(f *Flow, p *pkt)
}

// maxNames bounds the interned DNS names; past it names are copied per use.
const maxNames = 1 << 16

// NewTable returns an empty table for Ethernet frames from the capture
// labelled iface.
func NewTable(iface string) *Table {
	t := &Table{Iface: iface, names: map[string]string{}}
	t.setLinkType(layers.LinkTypeEthernet)
	return t
}

// setLinkType makes the decoder start at the layer of a link type.
func (t *Table) setLinkType(lt layers.LinkType) {
	if t.dec.parser != nil && t.link == lt {
		return
	}
	t.link = lt
	first := layers.LayerTypeEthernet
	if lt == layers.LinkTypeLinuxSLL {
		first = layers.LayerTypeLinuxSLL
	}
	t.dec.init(first)
}

// Reset empties the table and keeps its memory for reuse.
func (t *Table) Reset() {
	t.index.reset()
	t.flows.n, t.icmps.n, t.dnss.n, t.ans.n = 0, 0, 0, 0
	t.Stats = DecodeStats{}
	t.view = nil
}

// Add decodes one frame and accounts it to its flow (and, for an ICMP
// error, records the error on the flow it concerns). data is not retained.
func (t *Table) Add(data []byte, ci gopacket.CaptureInfo) {
	t.add(data, ci.Length, ci.Timestamp.UnixNano())
}

// add is Add with the frame's wire length and its time in Unix nanoseconds.
func (t *Table) add(data []byte, wire int, ts int64) {
	t.Stats.Packets++
	t.Stats.Bytes += uint64(wire)
	d := &t.dec
	d.decoded = d.decoded[:0]
	err := d.parser.DecodeLayers(data, &d.decoded)
	p := &t.cur
	*p = pkt{wire: uint64(wire), ts: ts}
	ip, dnsOK := false, false
	for _, lt := range d.decoded {
		switch lt {
		case layers.LayerTypeIPv4:
			ip = true
			p.proto = Proto(d.ip4.Protocol)
			p.src, p.dst = mapped4(d.ip4.SrcIP), mapped4(d.ip4.DstIP)
		case layers.LayerTypeIPv6:
			ip = true
			p.proto = Proto(d.ip6.NextHeader)
			if d.ip6.HopByHop != nil {
				p.proto = Proto(d.ip6.HopByHop.NextHeader)
			}
			copy(p.src[:], d.ip6.SrcIP)
			copy(p.dst[:], d.ip6.DstIP)
		case layers.LayerTypeTCP:
			d.takeTCP(p)
		case layers.LayerTypeUDP:
			p.sport, p.dport = uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
			p.payload = len(d.udp.Payload)
		case layers.LayerTypeICMPv4:
			d.takeICMPv4(p)
		case layers.LayerTypeICMPv6:
			d.takeICMPv6(p)
		case layers.LayerTypeDNS:
			dnsOK = true
		}
	}
	if !ip {
		t.Stats.NonIP++
		return
	}
	if err != nil {
		t.Stats.Malformed++
	}
	f := t.account(p)
	t.afterAccount(f, p, dnsOK)
	if t.onPacket != nil {
		t.onPacket(f, p)
	}
}

// afterAccount reads what a packet said beyond its counters: DNS messages
// and ICMP errors.
func (t *Table) afterAccount(f *Flow, p *pkt, dnsOK bool) {
	d := &t.dec
	switch {
	case p.icmpErr && p.proto == ProtoICMP:
		t.icmpError(p, false, d.icmp4.TypeCode.Type(), d.icmp4.TypeCode.Code(), uint32(d.icmp4.Seq), d.icmp4.Payload)
	case p.icmpErr:
		pl := d.icmp6.Payload
		if len(pl) >= 4 {
			t.icmpError(p, true, d.icmp6.TypeCode.Type(), d.icmp6.TypeCode.Code(), binary.BigEndian.Uint32(pl), pl[4:])
		}
	case p.sport != 53 && p.dport != 53:
	case p.proto == ProtoUDP && dnsOK:
		t.dnsMessage(f, &d.dns)
	case p.proto == ProtoTCP && p.payload > 2:
		t.tcpDNS(f, d.tcp.Payload)
	}
}

func mapped4(ip []byte) (a [16]byte) {
	a[10], a[11] = 0xff, 0xff
	copy(a[12:], ip)
	return a
}

func (d *decoder) takeTCP(p *pkt) {
	t := &d.tcp
	p.sport, p.dport = uint16(t.SrcPort), uint16(t.DstPort)
	p.seq, p.ack = t.Seq, t.Ack
	p.payload = len(t.Payload)
	if len(t.Contents) > 13 {
		p.flags = TCPFlags(t.Contents[13])
	}
}

func (d *decoder) takeICMPv4(p *pkt) {
	typ := d.icmp4.TypeCode.Type()
	switch typ {
	case layers.ICMPv4TypeEchoRequest, layers.ICMPv4TypeEchoReply:
		p.echo = true
		p.sport, p.dport = d.icmp4.Id, d.icmp4.Id
	case layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4TypeTimeExceeded, layers.ICMPv4TypeParameterProblem:
		p.icmpErr = true
	}
	p.icmpType = typ
}

func (d *decoder) takeICMPv6(p *pkt) {
	typ := d.icmp6.TypeCode.Type()
	switch {
	case typ == layers.ICMPv6TypeEchoRequest || typ == layers.ICMPv6TypeEchoReply:
		if len(d.icmp6.Payload) >= 2 {
			p.echo = true
			id := binary.BigEndian.Uint16(d.icmp6.Payload)
			p.sport, p.dport = id, id
		}
	case typ >= layers.ICMPv6TypeDestinationUnreachable && typ <= layers.ICMPv6TypeParameterProblem:
		p.icmpErr = true
	}
	p.icmpType = typ
}

// account finds or makes the packet's flow and counts the packet on it.
func (t *Table) account(p *pkt) *Flow {
	h := flowHash(p.proto, &p.src, p.sport, &p.dst, p.dport)
	i, slot, fwd := t.index.find(&t.flows, h, p.proto, &p.src, p.sport, &p.dst, p.dport)
	var f *Flow
	if i >= 0 {
		f = t.flows.at(i)
	} else {
		f = t.newFlow(h, slot, p.proto, p.src, p.dst, p.sport, p.dport)
		if p.proto == ProtoTCP && p.flags&(FlagSYN|FlagACK) == FlagSYN|FlagACK {
			f.swap() // the first packet seen is the SYN-ACK: its receiver initiated
			fwd = false
		}
		f.first = p.ts
		f.IsEcho = p.echo
	}
	if p.ts < f.first {
		f.first = p.ts // the flow was made by an ICMP error about it
	}
	if (p.proto == ProtoICMP || p.proto == ProtoICMPv6) && !p.echo {
		f.ICMPType = p.icmpType
	}
	if p.proto == ProtoTCP && p.flags&(FlagSYN|FlagACK) == FlagSYN && !fwd && f.Fwd.SYNs == 0 {
		f.swap() // a pure SYN from the side taken for the server
		fwd = true
	}
	dir := &f.Rev
	if fwd {
		dir = &f.Fwd
	}
	dir.Packets++
	dir.Bytes += p.wire
	dir.Payload += uint64(p.payload)
	if p.proto == ProtoTCP {
		dir.tcp(p)
	}
	f.last = p.ts
	return f
}

// newFlow makes the flow of a packet with src as its client, at the
// index slot find returned for hash h.
func (t *Table) newFlow(h uint64, slot int, proto Proto, src, dst [16]byte, sport, dport uint16) *Flow {
	f := t.flows.alloc()
	f.Iface = t.Iface
	f.proto = proto
	f.cli, f.cliPort, f.srv, f.srvPort = src, sport, dst, dport
	t.index.insert(&t.flows, h, slot, t.flows.n-1)
	return f
}

// tcp follows flags and sequence numbers of one direction: a SYN with the
// sequence number of an earlier one, or a data segment starting before the
// highest sequence number already sent, is a retransmission (a 1-byte
// segment just below it is a keep-alive and is not).
func (d *Direction) tcp(p *pkt) {
	if p.flags&FlagACK != 0 && d.Flags&FlagACK == 0 {
		d.firstAck = p.ack
	}
	d.Flags |= p.flags
	if p.flags&FlagSYN != 0 {
		if d.SYNs > 0 && p.seq == d.synSeq {
			d.Retransmits++
		} else if d.SYNs == 0 {
			d.synSeq = p.seq
		}
		d.SYNs++
		if !d.seqOK {
			d.nextSeq, d.seqOK = p.seq+1, true
		}
	}
	end := p.seq + uint32(p.payload)
	if p.payload > 0 {
		keepAlive := p.payload == 1 && p.seq == d.nextSeq-1
		if d.seqOK && int32(d.nextSeq-p.seq) > 0 && !keepAlive {
			d.Retransmits++
		}
	}
	if p.flags&FlagFIN != 0 {
		end++
	}
	if (p.payload > 0 || p.flags&FlagFIN != 0) && (!d.seqOK || int32(end-d.nextSeq) > 0) {
		d.nextSeq, d.seqOK = end, true
	}
}
