// Package capturetest builds Ethernet frames and whole pcap files of
// synthetic traffic (TCP handshakes, data, resets and retransmissions; UDP;
// DNS queries and answers; ICMP echo and errors; IPv4 and IPv6) for the
// tests and benchmarks of package capture. Frames are built with gopacket's
// layers; nothing is sent anywhere.
package capturetest

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TCP flags for Builder.TCP, in header bit order.
const (
	FIN uint8 = 1 << iota
	SYN
	RST
	PSH
	ACK
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
)

// Builder serializes frames; it reuses its layers and buffer, and each
// frame it returns is a fresh copy.
type Builder struct {
	buf   gopacket.SerializeBuffer
	opts  gopacket.SerializeOptions
	eth   layers.Ethernet
	ip4   layers.IPv4
	ip6   layers.IPv6
	tcp   layers.TCP
	udp   layers.UDP
	icmp4 layers.ICMPv4
	icmp6 layers.ICMPv6
	dns   layers.DNS
}

// NewBuilder returns a Builder that fixes lengths and computes checksums.
func NewBuilder() *Builder {
	return &Builder{
		buf:  gopacket.NewSerializeBuffer(),
		opts: gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
	}
}

// ip sets up the network layer for src → dst carrying proto and returns
// it, with the Ethernet header's type set to match.
func (b *Builder) ip(src, dst netip.Addr, proto layers.IPProtocol) gopacket.SerializableLayer {
	b.eth = layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	if src.Is6() && !src.Is4In6() {
		b.eth.EthernetType = layers.EthernetTypeIPv6
		b.ip6 = layers.IPv6{Version: 6, NextHeader: proto, HopLimit: 64, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		return &b.ip6
	}
	b.ip4 = layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, Flags: layers.IPv4DontFragment,
		SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	return &b.ip4
}

func (b *Builder) network() gopacket.NetworkLayer {
	if b.eth.EthernetType == layers.EthernetTypeIPv6 {
		return &b.ip6
	}
	return &b.ip4
}

func (b *Builder) serialize(ls ...gopacket.SerializableLayer) []byte {
	if err := gopacket.SerializeLayers(b.buf, b.opts, ls...); err != nil {
		panic(fmt.Sprintf("capturetest: serialize: %v", err))
	}
	return append([]byte(nil), b.buf.Bytes()...)
}

// TCP builds a segment from src to dst with the given flags.
func (b *Builder) TCP(src, dst netip.AddrPort, flags uint8, seq, ack uint32, payload []byte) []byte {
	ip := b.ip(src.Addr(), dst.Addr(), layers.IPProtocolTCP)
	b.tcp = layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: seq, Ack: ack, Window: 64240,
		FIN: flags&FIN != 0, SYN: flags&SYN != 0, RST: flags&RST != 0, PSH: flags&PSH != 0, ACK: flags&ACK != 0}
	_ = b.tcp.SetNetworkLayerForChecksum(b.network())
	return b.serialize(&b.eth, ip, &b.tcp, gopacket.Payload(payload))
}

// UDP builds a datagram from src to dst.
func (b *Builder) UDP(src, dst netip.AddrPort, payload []byte) []byte {
	ip := b.ip(src.Addr(), dst.Addr(), layers.IPProtocolUDP)
	b.udp = layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	_ = b.udp.SetNetworkLayerForChecksum(b.network())
	return b.serialize(&b.eth, ip, &b.udp, gopacket.Payload(payload))
}

// IP builds a packet of any protocol with a raw payload; fragOffset > 0
// makes it a non-first IPv4 fragment (in 8-byte units).
func (b *Builder) IP(src, dst netip.Addr, proto layers.IPProtocol, fragOffset uint16, payload []byte) []byte {
	ip := b.ip(src, dst, proto)
	if fragOffset > 0 {
		b.ip4.Flags, b.ip4.FragOffset = 0, fragOffset
	}
	return b.serialize(&b.eth, ip, gopacket.Payload(payload))
}

// Echo builds an ICMP (IPv4) or ICMPv6 echo request or reply.
func (b *Builder) Echo(src, dst netip.Addr, request bool, id, seq uint16) []byte {
	data := []byte("netsleuth-echo-0123456789abcdef")
	if src.Is4() {
		ip := b.ip(src, dst, layers.IPProtocolICMPv4)
		t := uint8(layers.ICMPv4TypeEchoReply)
		if request {
			t = layers.ICMPv4TypeEchoRequest
		}
		b.icmp4 = layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(t, 0), Id: id, Seq: seq}
		return b.serialize(&b.eth, ip, &b.icmp4, gopacket.Payload(data))
	}
	ip := b.ip(src, dst, layers.IPProtocolICMPv6)
	t := uint8(layers.ICMPv6TypeEchoReply)
	if request {
		t = layers.ICMPv6TypeEchoRequest
	}
	b.icmp6 = layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(t, 0)}
	_ = b.icmp6.SetNetworkLayerForChecksum(&b.ip6)
	body := append([]byte{byte(id >> 8), byte(id), byte(seq >> 8), byte(seq)}, data...)
	return b.serialize(&b.eth, ip, &b.icmp6, gopacket.Payload(body))
}

// ICMPError builds an error message from router `from` to `to` that
// quotes the IP packet of original (a frame from this Builder): for IPv4
// its header and 8 bytes, for IPv6 as much as fits in 1280 bytes. mtu is
// the next-hop MTU of a frag-needed or packet-too-big error.
func (b *Builder) ICMPError(from, to netip.Addr, typ, code uint8, mtu uint32, original []byte) []byte {
	quoted := original[14:]
	if from.Is4() {
		ihl := int(quoted[0]&0x0f) * 4
		quoted = quoted[:min(len(quoted), ihl+8)]
		ip := b.ip(from, to, layers.IPProtocolICMPv4)
		b.icmp4 = layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Seq: uint16(mtu)}
		return b.serialize(&b.eth, ip, &b.icmp4, gopacket.Payload(quoted))
	}
	quoted = quoted[:min(len(quoted), 1280-48)]
	ip := b.ip(from, to, layers.IPProtocolICMPv6)
	b.icmp6 = layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
	_ = b.icmp6.SetNetworkLayerForChecksum(&b.ip6)
	body := append([]byte{byte(mtu >> 24), byte(mtu >> 16), byte(mtu >> 8), byte(mtu)}, quoted...)
	return b.serialize(&b.eth, ip, &b.icmp6, gopacket.Payload(body))
}

// DNSMessage serializes a DNS message (for a UDP payload, or after a
// 2-byte length prefix over TCP).
func (b *Builder) DNSMessage(m *layers.DNS) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := m.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		panic(fmt.Sprintf("capturetest: dns: %v", err))
	}
	return buf.Bytes()
}

// Query returns a DNS query message for name and type.
func Query(id uint16, name string, typ layers.DNSType) *layers.DNS {
	return &layers.DNS{ID: id, RD: true, OpCode: layers.DNSOpCodeQuery,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: typ, Class: layers.DNSClassIN}}}
}

// Response returns the response to q with rcode and answers, each an IP
// address (A or AAAA) or "CNAME target".
func Response(q *layers.DNS, rcode layers.DNSResponseCode, answers ...string) *layers.DNS {
	r := *q
	r.QR, r.RA, r.ResponseCode = true, true, rcode
	r.Answers = nil
	name := q.Questions[0].Name
	for _, a := range answers {
		rr := layers.DNSResourceRecord{Name: name, Class: layers.DNSClassIN, TTL: 30}
		if len(a) > 6 && a[:6] == "CNAME " {
			rr.Type, rr.CNAME = layers.DNSTypeCNAME, []byte(a[6:])
			name = rr.CNAME
		} else if ip := netip.MustParseAddr(a); ip.Is4() {
			rr.Type, rr.IP = layers.DNSTypeA, ip.AsSlice()
		} else {
			rr.Type, rr.IP = layers.DNSTypeAAAA, ip.AsSlice()
		}
		r.Answers = append(r.Answers, rr)
	}
	return &r
}

// DNS builds a UDP datagram carrying m.
func (b *Builder) DNS(src, dst netip.AddrPort, m *layers.DNS) []byte {
	return b.UDP(src, dst, b.DNSMessage(m))
}

// ARP builds an ARP request, a frame without IP.
func (b *Builder) ARP(sender, target netip.Addr) []byte {
	eth := layers.Ethernet{SrcMAC: macA, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP}
	arp := layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6,
		ProtAddressSize: 4, Operation: layers.ARPRequest, SourceHwAddress: macA, SourceProtAddress: sender.AsSlice(),
		DstHwAddress: make([]byte, 6), DstProtAddress: target.AsSlice()}
	return b.serialize(&eth, &arp)
}

// VLAN inserts an 802.1Q tag with id into an Ethernet frame.
func VLAN(frame []byte, id uint16) []byte {
	out := make([]byte, 0, len(frame)+4)
	out = append(out, frame[:12]...)
	out = append(out, 0x81, 0x00, byte(id>>8)&0x0f, byte(id))
	return append(out, frame[12:]...)
}
