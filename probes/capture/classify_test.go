package capture_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/netsleuth/netsleuth/probes/capture"
	ct "github.com/netsleuth/netsleuth/probes/capture/capturetest"
)

func TestClassify(t *testing.T) {
	b := ct.NewBuilder()
	data := []byte("GET / HTTP/1.1\r\n\r\n")
	hs := [][]byte{b.TCP(pod, svc, ct.SYN, 1, 0, nil), b.TCP(svc, pod, ct.SYN|ct.ACK, 9, 2, nil), b.TCP(pod, svc, ct.ACK, 2, 10, nil)}
	syn := hs[0]
	udp := b.UDP(pod, netip.MustParseAddrPort("10.96.0.30:9000"), data)
	q := ct.Query(1, "api.example.com", layers.DNSTypeA)
	ext := netip.MustParseAddrPort("93.184.216.34:443")
	cases := []struct {
		name     string
		frames   [][]byte
		verdict  capture.Verdict
		sentence string
	}{
		{"syn no reply", [][]byte{syn, syn, syn}, capture.TCPNoReply, "SYN with no reply (3 SYNs to 10.96.0.20:80, nothing back)"},
		{"refused", [][]byte{syn, b.TCP(svc, pod, ct.RST|ct.ACK, 0, 2, nil)}, capture.TCPRefused,
			"SYN answered by RST: connection refused, the path to 10.96.0.20 works but nothing listens on port 80"},
		{"established", append(hs, b.TCP(pod, svc, ct.PSH|ct.ACK, 2, 10, data)), capture.TCPEstablished,
			"connection established (18 bytes sent, 0 received)"},
		{"reset", append(hs, b.TCP(pod, svc, ct.PSH|ct.ACK, 2, 10, data), b.TCP(svc, pod, ct.RST, 10, 0, nil)),
			capture.TCPReset, "connection established, reset by the server after 18 bytes"},
		{"stalled", hs[:2], capture.TCPHandshakeStalled, "SYN-ACK from 10.96.0.20:80 never acknowledged"},
		{"mid stream", [][]byte{b.TCP(pod, svc, ct.ACK, 5, 5, data)}, capture.TCPMidStream,
			"TCP without a handshake in the capture (1 packet)"},
		{"port unreachable", [][]byte{udp, b.ICMPError(netip.MustParseAddr("10.96.0.30"), pod.Addr(), 3, 3, 0, udp)},
			capture.ICMPUnreachable, "ICMP port unreachable from 10.96.0.30"},
		{"host unreachable twice", [][]byte{syn, b.ICMPError(router, pod.Addr(), 3, 1, 0, syn), syn,
			b.ICMPError(router, pod.Addr(), 3, 1, 0, syn)}, capture.ICMPUnreachable, "ICMP host unreachable from 10.250.0.1 (2 times)"},
		{"admin prohibited", [][]byte{syn, b.ICMPError(router, pod.Addr(), 3, 13, 0, syn)}, capture.ICMPUnreachable,
			"ICMP administratively prohibited from 10.250.0.1: a filter rejects the traffic"},
		{"frag needed", [][]byte{syn, b.ICMPError(router, pod.Addr(), 3, 4, 1450, syn)}, capture.ICMPFragNeeded,
			"ICMP fragmentation needed (next-hop MTU 1450) from 10.250.0.1"},
		{"time exceeded", [][]byte{syn, b.ICMPError(router, pod.Addr(), 11, 0, 0, syn)}, capture.ICMPTimeExceeded,
			"ICMP time exceeded from 10.250.0.1: the TTL ran out on the way"},
		{"dns no answer", [][]byte{b.DNS(pod, dnsSrv, q), b.DNS(pod, dnsSrv, q)}, capture.DNSNoAnswer,
			"DNS query for api.example.com (A) with no answer (2 queries to 10.96.0.10:53)"},
		{"nxdomain", [][]byte{b.DNS(pod, dnsSrv, q), b.DNS(dnsSrv, pod, ct.Response(q, layers.DNSResponseCodeNXDomain))},
			capture.DNSNXDomain, "DNS NXDOMAIN for api.example.com (A): the name does not exist"},
		{"servfail", [][]byte{b.DNS(pod, dnsSrv, q), b.DNS(dnsSrv, pod, ct.Response(q, layers.DNSResponseCodeServFail))},
			capture.DNSServFail, "DNS SERVFAIL for api.example.com (A): the server could not resolve it"},
		{"refused", [][]byte{b.DNS(pod, dnsSrv, q), b.DNS(dnsSrv, pod, ct.Response(q, layers.DNSResponseCodeRefused))},
			capture.DNSError, "DNS Query Refused for api.example.com (A)"},
		{"answered", [][]byte{b.DNS(pod, dnsSrv, q), b.DNS(dnsSrv, pod, ct.Response(q, 0, "192.0.2.7"))},
			capture.DNSAnswered, "DNS answered api.example.com (A): 192.0.2.7"},
		{"nodata", [][]byte{b.DNS(pod, dnsSrv, q), b.DNS(dnsSrv, pod, ct.Response(q, 0))},
			capture.DNSAnswered, "DNS answered api.example.com (A) with no records (NODATA)"},
		{"udp no reply", [][]byte{udp, udp}, capture.UDPNoReply, "UDP with no reply (2 datagrams to 10.96.0.30:9000, nothing back)"},
		{"udp answered", [][]byte{udp, b.UDP(netip.MustParseAddrPort("10.96.0.30:9000"), pod, data)}, capture.UDPAnswered,
			"UDP both ways (1 sent, 1 back)"},
		{"echo answered", [][]byte{b.Echo(pod.Addr(), ext.Addr(), true, 3, 1), b.Echo(ext.Addr(), pod.Addr(), false, 3, 1),
			b.Echo(pod.Addr(), ext.Addr(), true, 3, 2)}, capture.EchoAnswered, "ICMP echo answered (1 of 2)"},
		{"echo unanswered", [][]byte{b.Echo(pod.Addr(), ext.Addr(), true, 3, 1)}, capture.EchoUnanswered,
			"ICMP echo unanswered (1 request to 93.184.216.34)"},
		{"other", [][]byte{b.IP(pod.Addr(), svc.Addr(), layers.IPProtocolGRE, 0, data)}, capture.OtherTraffic,
			"1 proto-47 packet between 10.244.1.5 and 10.96.0.20"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := table("veth1", c.frames...)
			f := tb.Flows()[0]
			got := capture.Classify(f)
			if got.Verdict != c.verdict || got.Sentence != c.sentence {
				t.Errorf("got %v %q\nwant %v %q", got.Verdict, got.Sentence, c.verdict, c.sentence)
			}
		})
	}
}

func TestSourceNotTranslated(t *testing.T) {
	b := ct.NewBuilder()
	ext := netip.MustParseAddrPort("93.184.216.34:443")
	ctx := capture.Context{
		Uplink:       true,
		PodCIDRs:     []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("192.168.2.0/24")},
	}
	node := netip.MustParseAddrPort("192.168.2.11:40000")
	cases := []struct {
		name string
		from netip.AddrPort
		to   netip.AddrPort
		ctx  func(capture.Context) capture.Context
		want bool
	}{
		{"pod to internet on uplink", pod, ext, nil, true},
		{"translated to node address", node, ext, nil, false},
		{"pod to service", pod, svc, nil, false},
		{"pod to another node", pod, netip.MustParseAddrPort("192.168.2.12:10250"), nil, false},
		{"not the uplink", pod, ext, func(c capture.Context) capture.Context { c.Uplink = false; return c }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := ctx
			if c.ctx != nil {
				x = c.ctx(ctx)
			}
			tb := table("eth0", b.TCP(c.from, c.to, ct.SYN, 1, 0, nil))
			res := capture.ClassifyTable(tb, x)
			got := len(res[0].Findings) == 2 && res[0].Findings[1].Verdict == capture.SourceNotTranslated
			if got != c.want {
				t.Fatalf("findings %+v, want source-not-translated %v", res[0].Findings, c.want)
			}
			if got && !strings.Contains(res[0].Findings[1].Sentence, "10.244.1.5 to 93.184.216.34:443 left eth0") {
				t.Errorf("sentence %q", res[0].Findings[1].Sentence)
			}
		})
	}
}

func TestCompareCaptures(t *testing.T) {
	b := ct.NewBuilder()
	syn := b.TCP(pod, svc, ct.SYN, 1, 0, nil)
	synack := b.TCP(svc, pod, ct.SYN|ct.ACK, 9, 2, nil)
	q := ct.Query(5, "db.example.com", layers.DNSTypeA)
	query, answer := b.DNS(pod, dnsSrv, q), b.DNS(dnsSrv, pod, ct.Response(q, 0, "192.0.2.1"))
	other := netip.MustParseAddrPort("10.96.0.77:5432")
	lost := b.TCP(pod, other, ct.SYN, 1, 0, nil)
	// The bridge sees the replies; the pod's veth misses the SYN-ACK.
	veth := table("veth1", syn, query, answer, lost)
	bridge := table("cni0", syn, synack, query, answer)
	diffs := capture.Compare(veth, bridge)
	if len(diffs) != 2 {
		t.Fatalf("differences %+v", diffs)
	}
	want := []struct {
		v capture.Verdict
		s string
	}{
		{capture.ReplyDropped, "reply seen on cni0 but not on veth1 (dropped on the node): 1 tcp packet from 10.96.0.20:80 to 10.244.1.5:40000"},
		{capture.RequestNotForwarded, "request seen on veth1, never left on cni0 (tcp 10.244.1.5:40000 to 10.96.0.77:5432)"},
	}
	for i, w := range want {
		if diffs[i].Verdict != w.v || diffs[i].Sentence != w.s {
			t.Errorf("diff %d: %v %q, want %v %q", i, diffs[i].Verdict, diffs[i].Sentence, w.v, w.s)
		}
	}
}

func TestCompareAcrossTranslation(t *testing.T) {
	b := ct.NewBuilder()
	backend := netip.MustParseAddrPort("10.244.2.9:8080")
	masq := netip.MustParseAddrPort("192.168.2.11:40000")
	ext := netip.MustParseAddrPort("93.184.216.34:443")
	// The Service address becomes the backend (DNAT); the pod address
	// becomes the node's (SNAT, port kept). Both match; no difference.
	veth := table("veth1", b.TCP(pod, svc, ct.SYN, 1, 0, nil), b.TCP(svc, pod, ct.SYN|ct.ACK, 9, 2, nil),
		b.TCP(pod, ext, ct.SYN, 1, 0, nil), b.TCP(ext, pod, ct.SYN|ct.ACK, 9, 2, nil))
	uplink := table("eth0", b.TCP(pod, backend, ct.SYN, 1, 0, nil), b.TCP(backend, pod, ct.SYN|ct.ACK, 9, 2, nil),
		b.TCP(masq, ext, ct.SYN, 1, 0, nil), b.TCP(ext, masq, ct.SYN|ct.ACK, 9, 2, nil))
	if diffs := capture.Compare(veth, uplink); len(diffs) != 0 {
		t.Errorf("differences %+v", diffs)
	}
}
