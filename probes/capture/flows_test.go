package capture_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/netsleuth/netsleuth/probes/capture"
	ct "github.com/netsleuth/netsleuth/probes/capture/capturetest"
)

var (
	pod    = netip.MustParseAddrPort("10.244.1.5:40000")
	svc    = netip.MustParseAddrPort("10.96.0.20:80")
	dnsSrv = netip.MustParseAddrPort("10.96.0.10:53")
	pod6   = netip.MustParseAddrPort("[fd00:10:244::5]:40001")
	srv6   = netip.MustParseAddrPort("[fd00:10:96::20]:443")
	router = netip.MustParseAddr("10.250.0.1")
)

// table feeds frames to a new table, 1 ms apart.
func table(iface string, frames ...[]byte) *capture.Table {
	t := capture.NewTable(iface)
	ts := ct.Epoch
	for _, f := range frames {
		t.Add(f, gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(f), Length: len(f)})
		ts = ts.Add(time.Millisecond)
	}
	return t
}

// only returns the single flow of a table with one flow.
func only(t *testing.T, tb *capture.Table) *capture.Flow {
	t.Helper()
	fs := tb.Flows()
	if len(fs) != 1 {
		for _, f := range fs {
			t.Logf("flow %v", f.Key())
		}
		t.Fatalf("want 1 flow, got %d", len(fs))
	}
	return fs[0]
}

func TestTCPFlowDirectionsAndCounters(t *testing.T) {
	b := ct.NewBuilder()
	data := bytes.Repeat([]byte("x"), 100)
	frames := [][]byte{
		b.TCP(pod, svc, ct.SYN, 1000, 0, nil),
		b.TCP(svc, pod, ct.SYN|ct.ACK, 5000, 1001, nil),
		b.TCP(pod, svc, ct.ACK, 1001, 5001, nil),
		b.TCP(pod, svc, ct.PSH|ct.ACK, 1001, 5001, data),
		b.TCP(pod, svc, ct.PSH|ct.ACK, 1001, 5001, data), // retransmission
		b.TCP(svc, pod, ct.PSH|ct.ACK, 5001, 1101, data[:40]),
		b.TCP(pod, svc, ct.ACK, 1101, 5040, data[:1]), // keep-alive below nextSeq? no: new byte
		b.TCP(svc, pod, ct.RST|ct.ACK, 5041, 1102, nil),
	}
	f := only(t, table("veth1", frames...))
	if f.Client() != pod || f.Server() != svc || f.Iface != "veth1" {
		t.Fatalf("client %v server %v iface %q", f.Client(), f.Server(), f.Iface)
	}
	if f.Fwd.Packets != 5 || f.Rev.Packets != 3 {
		t.Errorf("packets fwd %d rev %d, want 5 and 3", f.Fwd.Packets, f.Rev.Packets)
	}
	var wantFwd uint64
	for _, i := range []int{0, 2, 3, 4, 6} {
		wantFwd += uint64(len(frames[i]))
	}
	if f.Fwd.Bytes != wantFwd {
		t.Errorf("fwd bytes %d, want %d (frame lengths)", f.Fwd.Bytes, wantFwd)
	}
	if f.Fwd.Payload != 201 || f.Rev.Payload != 40 {
		t.Errorf("payload %d/%d, want 201/40", f.Fwd.Payload, f.Rev.Payload)
	}
	if f.Fwd.Retransmits != 1 || f.Rev.Retransmits != 0 {
		t.Errorf("retransmits %d/%d, want 1/0", f.Fwd.Retransmits, f.Rev.Retransmits)
	}
	if got := f.Fwd.Flags.String(); got != "SYN|PSH|ACK" {
		t.Errorf("client flags %q", got)
	}
	if got := f.Rev.Flags.String(); got != "SYN|RST|PSH|ACK" {
		t.Errorf("server flags %q", got)
	}
	if !f.RST() || f.First() != ct.Epoch || f.Last() != ct.Epoch.Add(7*time.Millisecond) {
		t.Errorf("rst %v first %v last %v", f.RST(), f.First(), f.Last())
	}
}

func TestInitiatorFromSYNWhenCaptureStartsLate(t *testing.T) {
	b := ct.NewBuilder()
	// The first packet seen is the SYN-ACK: its receiver is the client.
	f := only(t, table("eth0", b.TCP(svc, pod, ct.SYN|ct.ACK, 5000, 1001, nil), b.TCP(pod, svc, ct.ACK, 1001, 5001, nil)))
	if f.Client() != pod || f.Fwd.Packets != 1 || f.Rev.Packets != 1 {
		t.Errorf("client %v fwd %d rev %d", f.Client(), f.Fwd.Packets, f.Rev.Packets)
	}
	// A stray packet from the server first, then the client's SYN.
	f = only(t, table("eth0", b.TCP(svc, pod, ct.RST, 1, 0, nil), b.TCP(pod, svc, ct.SYN, 1000, 0, nil)))
	if f.Client() != pod || f.Fwd.SYNs != 1 || f.Rev.Flags != capture.FlagRST {
		t.Errorf("client %v syns %d server flags %v", f.Client(), f.Fwd.SYNs, f.Rev.Flags)
	}
}

func TestRepeatedSYNIsRetransmission(t *testing.T) {
	b := ct.NewBuilder()
	syn := b.TCP(pod, svc, ct.SYN, 77, 0, nil)
	f := only(t, table("eth0", syn, syn, syn))
	if f.Fwd.SYNs != 3 || f.Fwd.Retransmits != 2 || f.Rev.Packets != 0 {
		t.Errorf("syns %d retransmits %d rev %d", f.Fwd.SYNs, f.Fwd.Retransmits, f.Rev.Packets)
	}
}

func TestDNSOverUDPAndTCP(t *testing.T) {
	b := ct.NewBuilder()
	q := ct.Query(0x1234, "web.prod.svc.cluster.local", layers.DNSTypeA)
	r := ct.Response(q, layers.DNSResponseCodeNoErr, "CNAME web-v2.prod.svc.cluster.local", "10.96.3.4", "10.96.3.5")
	f := only(t, table("veth1", b.DNS(pod, dnsSrv, q), b.DNS(dnsSrv, pod, r)))
	d := f.DNS
	if d == nil || d.Name != "web.prod.svc.cluster.local" || d.Type != layers.DNSTypeA || d.Rcode != 0 ||
		d.Queries != 1 || d.Responses != 1 || d.Answered != 1 || d.Unanswered != 0 {
		t.Fatalf("dns %+v", d)
	}
	if len(d.Answers()) != 3 || d.Answers()[0].String() != "CNAME web-v2.prod.svc.cluster.local" ||
		d.Answers()[1].Addr != netip.MustParseAddr("10.96.3.4") {
		t.Errorf("answers %v", d.Answers())
	}

	// TCP: each message after its 2-byte length prefix.
	q2 := ct.Query(7, "big.example.com", layers.DNSTypeAAAA)
	frame := func(m *layers.DNS) []byte {
		raw := b.DNSMessage(m)
		return append([]byte{byte(len(raw) >> 8), byte(len(raw))}, raw...)
	}
	tq, tr := frame(q2), frame(ct.Response(q2, layers.DNSResponseCodeNXDomain))
	tb := table("veth1",
		b.TCP(pod, dnsSrv, ct.SYN, 1, 0, nil), b.TCP(dnsSrv, pod, ct.SYN|ct.ACK, 9, 2, nil),
		b.TCP(pod, dnsSrv, ct.PSH|ct.ACK, 2, 10, tq), b.TCP(dnsSrv, pod, ct.PSH|ct.ACK, 10, 2+uint32(len(tq)), tr))
	d = only(t, tb).DNS
	if d == nil || d.Name != "big.example.com" || d.Rcode != layers.DNSResponseCodeNXDomain || d.Answered != 1 {
		t.Fatalf("tcp dns %+v", d)
	}
	if tb.Stats.Malformed != 0 {
		t.Errorf("malformed %d", tb.Stats.Malformed)
	}
}

func TestDNSRetriedQueryWithoutResponse(t *testing.T) {
	b := ct.NewBuilder()
	q := ct.Query(9, "gone.example.com", layers.DNSTypeA)
	other := ct.Query(10, "gone.example.com", layers.DNSTypeAAAA)
	d := only(t, table("veth1", b.DNS(pod, dnsSrv, q), b.DNS(pod, dnsSrv, q), b.DNS(pod, dnsSrv, other),
		b.DNS(dnsSrv, pod, ct.Response(other, layers.DNSResponseCodeNoErr)))).DNS
	if d.Queries != 3 || d.Responses != 1 || d.Answered != 1 || d.Unanswered != 1 {
		t.Errorf("dns %+v", d)
	}
}

func TestICMPErrorsAttributedToOriginalFlow(t *testing.T) {
	b := ct.NewBuilder()
	udp := b.UDP(pod, netip.MustParseAddrPort("10.96.0.30:9000"), []byte("hello"))
	syn := b.TCP(pod, svc, ct.SYN, 1, 0, nil)
	big := b.TCP(pod6, srv6, ct.ACK, 1, 1, bytes.Repeat([]byte("y"), 1400))
	r6 := netip.MustParseAddr("fd00:250::1")
	tb := table("eth0",
		udp, b.ICMPError(netip.MustParseAddr("10.96.0.30"), pod.Addr(), 3, 3, 0, udp),
		syn, b.ICMPError(router, pod.Addr(), 3, 13, 0, syn),
		big, b.ICMPError(r6, pod6.Addr(), layers.ICMPv6TypePacketTooBig, 0, 1280, big),
	)
	cases := []struct {
		key  capture.Key
		kind capture.ICMPErrorKind
		from netip.Addr
		mtu  uint32
	}{
		{key(capture.ProtoUDP, pod, netip.MustParseAddrPort("10.96.0.30:9000")), capture.UnreachPort, netip.MustParseAddr("10.96.0.30"), 0},
		{key(capture.ProtoTCP, pod, svc), capture.UnreachAdmin, router, 0},
		{key(capture.ProtoTCP, pod6, srv6), capture.FragNeeded, r6, 1280},
	}
	for _, c := range cases {
		f := tb.Lookup(c.key)
		if f == nil || f.ICMP == nil {
			t.Fatalf("%v: no flow or no ICMP error (%v)", c.key, f)
		}
		if e := f.ICMP; e.Kind != c.kind || e.From != c.from || e.MTU != c.mtu || e.Count != 1 {
			t.Errorf("%v: error %+v", c.key, e)
		}
		if f.Fwd.Packets != 1 {
			t.Errorf("%v: the error was counted on the original flow: %d packets", c.key, f.Fwd.Packets)
		}
	}
	// Each error is also a packet of its own ICMP flow, as tshark counts it.
	if tb.Len() != 6 {
		t.Errorf("%d flows, want 3 originals + 3 ICMP error flows", tb.Len())
	}
}

func TestICMPErrorWithoutOriginalMakesFlow(t *testing.T) {
	b := ct.NewBuilder()
	syn := b.TCP(pod, svc, ct.SYN, 1, 0, nil)
	tb := table("cni0", b.ICMPError(router, pod.Addr(), 3, 1, 0, syn))
	f := tb.Lookup(key(capture.ProtoTCP, pod, svc))
	if f == nil || f.ICMP == nil || f.ICMP.Kind != capture.UnreachHost || f.Packets() != 0 || f.Client() != pod {
		t.Fatalf("flow %+v", f)
	}
}

func TestEchoFlowsByIdentifier(t *testing.T) {
	b := ct.NewBuilder()
	a, c := pod.Addr(), svc.Addr()
	tb := table("eth0", b.Echo(a, c, true, 1, 1), b.Echo(c, a, false, 1, 1), b.Echo(a, c, true, 2, 1),
		b.Echo(pod6.Addr(), srv6.Addr(), true, 5, 1), b.Echo(srv6.Addr(), pod6.Addr(), false, 5, 1))
	if tb.Len() != 3 {
		t.Fatalf("%d flows, want 3", tb.Len())
	}
	for _, f := range tb.Flows() {
		if !f.IsEcho || f.Client().Port() != f.Server().Port() {
			t.Errorf("flow %v: echo %v", f.Key(), f.IsEcho)
		}
	}
	if f := tb.Lookup(capture.Key{Proto: capture.ProtoICMPv6, A: netip.AddrPortFrom(pod6.Addr(), 5),
		B: netip.AddrPortFrom(srv6.Addr(), 5)}); f == nil || f.Rev.Packets != 1 {
		t.Errorf("icmpv6 echo flow %v", f)
	}
}

func TestNonIPAndVLAN(t *testing.T) {
	b := ct.NewBuilder()
	tb := table("eth0", b.ARP(pod.Addr(), svc.Addr()), ct.VLAN(b.TCP(pod, svc, ct.SYN, 1, 0, nil), 42))
	if tb.Stats.NonIP != 1 || tb.Len() != 1 || tb.Stats.Packets != 2 {
		t.Errorf("stats %+v flows %d", tb.Stats, tb.Len())
	}
}

// key is the canonical Key of a flow between two endpoints.
func key(p capture.Proto, x, y netip.AddrPort) capture.Key {
	if y.Addr().Less(x.Addr()) || y.Addr() == x.Addr() && y.Port() < x.Port() {
		x, y = y, x
	}
	return capture.Key{Proto: p, A: x, B: y}
}
