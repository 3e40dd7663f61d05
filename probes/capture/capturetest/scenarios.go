package capturetest

import (
	"net/netip"

	"github.com/gopacket/gopacket/layers"
)

// handshake emits SYN, SYN-ACK, ACK and returns the next sequence numbers.
func (m *mix) handshake(c, s netip.AddrPort) (cseq, sseq uint32) {
	cseq, sseq = m.rnd.Uint32(), m.rnd.Uint32()
	m.emit(m.b.TCP(c, s, SYN, cseq, 0, nil))
	m.emit(m.b.TCP(s, c, SYN|ACK, sseq, cseq+1, nil))
	m.emit(m.b.TCP(c, s, ACK, cseq+1, sseq+1, nil))
	return cseq + 1, sseq + 1
}

// exchange emits n request/response pairs with ACKs; with retransmit set,
// one response segment is sent twice.
func (m *mix) exchange(c, s netip.AddrPort, cseq, sseq *uint32, n int, retransmit bool) {
	for i := range n {
		req := m.data[:m.size()]
		m.emit(m.b.TCP(c, s, PSH|ACK, *cseq, *sseq, req))
		*cseq += uint32(len(req))
		resp := m.data[:m.size()]
		m.emit(m.b.TCP(s, c, PSH|ACK, *sseq, *cseq, resp))
		if retransmit && i == 0 {
			m.emit(m.b.TCP(s, c, PSH|ACK, *sseq, *cseq, resp))
		}
		*sseq += uint32(len(resp))
		m.emit(m.b.TCP(c, s, ACK, *cseq, *sseq, nil))
	}
}

func (m *mix) tcpSession(c, s netip.Addr) {
	ca, sa := netip.AddrPortFrom(c, m.ephemeral()), netip.AddrPortFrom(s, m.servicePort())
	cseq, sseq := m.handshake(ca, sa)
	m.exchange(ca, sa, &cseq, &sseq, 1+m.rnd.IntN(6), m.rnd.IntN(10) == 0)
	m.emit(m.b.TCP(ca, sa, FIN|ACK, cseq, sseq, nil))
	m.emit(m.b.TCP(sa, ca, FIN|ACK, sseq, cseq+1, nil))
	m.emit(m.b.TCP(ca, sa, ACK, cseq+1, sseq+1, nil))
}

func (m *mix) tcpRefused(c, s netip.Addr) {
	ca, sa := netip.AddrPortFrom(c, m.ephemeral()), netip.AddrPortFrom(s, m.servicePort())
	seq := m.rnd.Uint32()
	m.emit(m.b.TCP(ca, sa, SYN, seq, 0, nil))
	m.emit(m.b.TCP(sa, ca, RST|ACK, 0, seq+1, nil))
}

func (m *mix) tcpNoReply(c, s netip.Addr) {
	ca, sa := netip.AddrPortFrom(c, m.ephemeral()), netip.AddrPortFrom(s, m.servicePort())
	seq := m.rnd.Uint32()
	for range 3 {
		m.emit(m.b.TCP(ca, sa, SYN, seq, 0, nil))
	}
}

func (m *mix) tcpReset(c, s netip.Addr) {
	ca, sa := netip.AddrPortFrom(c, m.ephemeral()), netip.AddrPortFrom(s, m.servicePort())
	cseq, sseq := m.handshake(ca, sa)
	m.exchange(ca, sa, &cseq, &sseq, 1+m.rnd.IntN(3), false)
	m.emit(m.b.TCP(sa, ca, RST|ACK, sseq, cseq, nil))
}

// dnsServer is where pods send DNS: kube-dns, or its IPv6 twin.
func dnsServer(c netip.Addr) netip.AddrPort {
	if c.Is4() {
		return netip.MustParseAddrPort("10.96.0.10:53")
	}
	return netip.MustParseAddrPort("[fd00:1096::a]:53")
}

var names = []string{"kubernetes.default.svc.cluster.local", "api.example.com", "db.prod.svc.cluster.local",
	"registry.k8s.io", "metrics.monitoring.svc.cluster.local", "cdn.example.net"}

func (m *mix) query() *layers.DNS {
	typ := layers.DNSTypeA
	if m.rnd.IntN(3) == 0 {
		typ = layers.DNSTypeAAAA
	}
	return Query(uint16(m.rnd.Uint32()), names[m.rnd.IntN(len(names))], typ)
}

func (m *mix) dnsAnswered(c, _ netip.Addr) {
	ca, sa := netip.AddrPortFrom(c, m.ephemeral()), dnsServer(c)
	q := m.query()
	var answers []string
	if m.rnd.IntN(4) == 0 {
		answers = append(answers, "CNAME edge.example.net")
	}
	for i := range 1 + m.rnd.IntN(3) {
		if q.Questions[0].Type == layers.DNSTypeA {
			answers = append(answers, netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}).String())
		} else {
			answers = append(answers, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}).String())
		}
	}
	m.emit(m.b.DNS(ca, sa, q))
	m.emit(m.b.DNS(sa, ca, Response(q, layers.DNSResponseCodeNoErr, answers...)))
}

func (m *mix) dnsNXDomain(c, _ netip.Addr) {
	ca, sa := netip.AddrPortFrom(c, m.ephemeral()), dnsServer(c)
	q := m.query()
	m.emit(m.b.DNS(ca, sa, q))
	m.emit(m.b.DNS(sa, ca, Response(q, layers.DNSResponseCodeNXDomain)))
}

func (m *mix) dnsServfail(c, _ netip.Addr) {
	ca, sa := netip.AddrPortFrom(c, m.ephemeral()), dnsServer(c)
	q := m.query()
	m.emit(m.b.DNS(ca, sa, q))
	m.emit(m.b.DNS(sa, ca, Response(q, layers.DNSResponseCodeServFail)))
}

func (m *mix) dnsNoAnswer(c, _ netip.Addr) {
	ca, sa := netip.AddrPortFrom(c, m.ephemeral()), dnsServer(c)
	q := m.query()
	m.emit(m.b.DNS(ca, sa, q))
	m.emit(m.b.DNS(ca, sa, q))
}

// dnsTCP is one query and its answer over TCP, each with its length prefix.
func (m *mix) dnsTCP(c, _ netip.Addr) {
	ca, sa := netip.AddrPortFrom(c, m.ephemeral()), dnsServer(c)
	cseq, sseq := m.handshake(ca, sa)
	q := m.query()
	for i, msg := range [][]byte{m.b.DNSMessage(q), m.b.DNSMessage(Response(q, layers.DNSResponseCodeNoErr))} {
		framed := append([]byte{byte(len(msg) >> 8), byte(len(msg))}, msg...)
		if i == 0 {
			m.emit(m.b.TCP(ca, sa, PSH|ACK, cseq, sseq, framed))
			cseq += uint32(len(framed))
		} else {
			m.emit(m.b.TCP(sa, ca, PSH|ACK, sseq, cseq, framed))
			sseq += uint32(len(framed))
		}
	}
	m.emit(m.b.TCP(ca, sa, FIN|ACK, cseq, sseq, nil))
	m.emit(m.b.TCP(sa, ca, FIN|ACK, sseq, cseq+1, nil))
	m.emit(m.b.TCP(ca, sa, ACK, cseq+1, sseq+1, nil))
}

func (m *mix) udpExchange(c, s netip.Addr) {
	ca, sa := netip.AddrPortFrom(c, m.ephemeral()), netip.AddrPortFrom(s, 8125+uint16(m.rnd.IntN(3)))
	for range 1 + m.rnd.IntN(4) {
		m.emit(m.b.UDP(ca, sa, m.data[:m.size()]))
		m.emit(m.b.UDP(sa, ca, m.data[:m.size()]))
	}
}

func (m *mix) udpNoReply(c, s netip.Addr) {
	ca, sa := netip.AddrPortFrom(c, m.ephemeral()), netip.AddrPortFrom(s, 9999)
	for range 1 + m.rnd.IntN(3) {
		m.emit(m.b.UDP(ca, sa, m.data[:m.size()]))
	}
}

func (m *mix) echo(c, s netip.Addr) {
	id := uint16(m.rnd.Uint32())
	for seq := range uint16(1 + m.rnd.IntN(4)) {
		m.emit(m.b.Echo(c, s, true, id, seq))
		m.emit(m.b.Echo(s, c, false, id, seq))
	}
}

func (m *mix) echoUnanswered(c, s netip.Addr) {
	id := uint16(m.rnd.Uint32())
	for seq := range uint16(1 + m.rnd.IntN(3)) {
		m.emit(m.b.Echo(c, s, true, id, seq))
	}
}

// unreachable is a packet and the ICMP error it drew: port unreachable
// from the server for UDP, host unreachable or admin-prohibited from a
// router for a SYN, or fragmentation needed for a large data segment.
func (m *mix) unreachable(c, s netip.Addr) {
	router := netip.AddrFrom4([4]byte{10, 250, 0, 1})
	if c.Is6() {
		router = netip.MustParseAddr("fd00:250::1")
	}
	ca := netip.AddrPortFrom(c, m.ephemeral())
	typ, v6 := uint8(layers.ICMPv4TypeDestinationUnreachable), c.Is6()
	if v6 {
		typ = layers.ICMPv6TypeDestinationUnreachable
	}
	switch m.rnd.IntN(4) {
	case 0:
		pkt := m.b.UDP(ca, netip.AddrPortFrom(s, 9000), m.data[:m.size()])
		m.emit(pkt)
		m.emit(m.b.ICMPError(s, c, typ, pick(v6, layers.ICMPv4CodePort, layers.ICMPv6CodePortUnreachable), 0, pkt))
	case 1:
		pkt := m.b.TCP(ca, netip.AddrPortFrom(s, m.servicePort()), SYN, m.rnd.Uint32(), 0, nil)
		m.emit(pkt)
		m.emit(m.b.ICMPError(router, c, typ, pick(v6, layers.ICMPv4CodeHost, layers.ICMPv6CodeAddressUnreachable), 0, pkt))
	case 2:
		pkt := m.b.TCP(ca, netip.AddrPortFrom(s, m.servicePort()), SYN, m.rnd.Uint32(), 0, nil)
		m.emit(pkt)
		m.emit(m.b.ICMPError(router, c, typ, pick(v6, layers.ICMPv4CodeCommAdminProhibited, layers.ICMPv6CodeAdminProhibited), 0, pkt))
	default:
		pkt := m.b.TCP(ca, netip.AddrPortFrom(s, m.servicePort()), PSH|ACK, m.rnd.Uint32(), 1, m.data[:1400])
		m.emit(pkt)
		if v6 {
			m.emit(m.b.ICMPError(router, c, layers.ICMPv6TypePacketTooBig, 0, 1280, pkt))
		} else {
			m.emit(m.b.ICMPError(router, c, typ, layers.ICMPv4CodeFragmentationNeeded, 1400, pkt))
		}
	}
}

func pick(v6 bool, v4code, v6code uint8) uint8 {
	if v6 {
		return v6code
	}
	return v4code
}
