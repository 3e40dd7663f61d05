package capture_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/netsleuth/netsleuth/probes/capture"
	ct "github.com/netsleuth/netsleuth/probes/capture/capturetest"
)

// The addresses of a node that masquerades its pods' traffic to an
// off-cluster host, as on the lab: the node's uplink is a bridge with
// br_netfilter, whose receive tap sees replies already translated back.
var (
	natPod  = netip.MustParseAddrPort("10.244.0.7:43210")
	natNode = netip.MustParseAddrPort("10.250.0.1:43210") // masqueraded, port kept
	natExt  = netip.MustParseAddrPort("192.168.2.10:80")
)

// pcapOf writes frames to a pcap file and reads it back into a table.
func pcapOf(t *testing.T, iface string, frames ...[]byte) (*capture.Table, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), strings.ReplaceAll(iface, "/", "_")+".pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ct.WriteFrames(f, frames...); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tb, err := capture.AnalyzeFile(path, capture.ReadOptions{Iface: iface})
	if err != nil {
		t.Fatal(err)
	}
	return tb, path
}

// TestJoinTranslatedHalves: one connection seen on one interface before and
// after a translation (requests masqueraded, replies translated back; or
// requests after a Service's DNAT, replies after its reverse) is one flow
// with the verdict of the whole connection.
func TestJoinTranslatedHalves(t *testing.T) {
	b := ct.NewBuilder()
	data := []byte("GET / HTTP/1.1\r\n\r\n")
	random := netip.MustParseAddrPort("10.250.0.1:61001") // MASQUERADE --random-fully
	vip, ep := netip.MustParseAddrPort("10.96.0.20:80"), netip.MustParseAddrPort("10.244.1.9:8080")
	upstream := netip.MustParseAddrPort("10.250.0.53:53")
	q := ct.Query(7, "example.org", layers.DNSTypeA)
	udp := b.UDP(natNode, natExt, data)
	cases := []struct {
		name           string
		frames         [][]byte
		verdict        capture.Verdict
		client, server netip.AddrPort
		seenAs         string
	}{
		{"masqueraded, established", [][]byte{
			b.TCP(natNode, natExt, ct.SYN, 100, 0, nil), b.TCP(natExt, natPod, ct.SYN|ct.ACK, 900, 101, nil),
			b.TCP(natNode, natExt, ct.ACK, 101, 901, nil), b.TCP(natNode, natExt, ct.PSH|ct.ACK, 101, 901, data),
			b.TCP(natExt, natPod, ct.PSH|ct.ACK, 901, 119, data), b.TCP(natNode, natExt, ct.FIN|ct.ACK, 119, 919, nil)},
			capture.TCPEstablished, natNode, natExt, "192.168.2.10:80 → 10.244.0.7:43210"},
		{"masqueraded to another port", [][]byte{
			b.TCP(random, natExt, ct.SYN, 5, 0, nil), b.TCP(natExt, natPod, ct.SYN|ct.ACK, 70, 6, nil),
			b.TCP(random, natExt, ct.ACK, 6, 71, nil)},
			capture.TCPEstablished, random, natExt, "192.168.2.10:80 → 10.244.0.7:43210"},
		{"masqueraded, refused", [][]byte{
			b.TCP(natNode, natExt, ct.SYN, 100, 0, nil), b.TCP(natExt, natPod, ct.RST|ct.ACK, 0, 101, nil)},
			capture.TCPRefused, natNode, natExt, "192.168.2.10:80 → 10.244.0.7:43210"},
		{"masqueraded, the pod never acknowledges", [][]byte{
			b.TCP(natNode, natExt, ct.SYN, 100, 0, nil), b.TCP(natExt, natPod, ct.SYN|ct.ACK, 900, 101, nil),
			b.TCP(natNode, natExt, ct.SYN, 100, 0, nil), b.TCP(natExt, natPod, ct.SYN|ct.ACK, 900, 101, nil)},
			capture.TCPHandshakeStalled, natNode, natExt, "192.168.2.10:80 → 10.244.0.7:43210"},
		{"a Service's DNAT", [][]byte{
			b.TCP(natPod, ep, ct.SYN, 1, 0, nil), b.TCP(vip, natPod, ct.SYN|ct.ACK, 50, 2, nil),
			b.TCP(natPod, ep, ct.ACK, 2, 51, nil)},
			capture.TCPEstablished, natPod, ep, "10.96.0.20:80 → 10.244.0.7:43210"},
		{"masqueraded DNS", [][]byte{
			b.DNS(netip.AddrPortFrom(natNode.Addr(), 5353), upstream, q),
			b.DNS(upstream, netip.AddrPortFrom(natPod.Addr(), 5353), ct.Response(q, 0, "192.0.2.7"))},
			capture.DNSAnswered, netip.AddrPortFrom(natNode.Addr(), 5353), upstream, "10.250.0.53:53 → 10.244.0.7:5353"},
		{"masqueraded UDP, port unreachable", [][]byte{udp,
			b.ICMPError(natExt.Addr(), natPod.Addr(), 3, 3, 0, b.UDP(natPod, natExt, data))},
			capture.ICMPUnreachable, natNode, natExt, "192.168.2.10:80 → 10.244.0.7:43210"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb, _ := pcapOf(t, "n1/nsl-br0", c.frames...)
			var tcp []*capture.Flow
			for _, f := range tb.Flows() {
				if f.Proto() != capture.ProtoICMP {
					tcp = append(tcp, f)
				}
			}
			if len(tcp) != 1 {
				for _, f := range tcp {
					t.Logf("flow %v: %s", f.Key(), capture.Classify(f).Sentence)
				}
				t.Fatalf("want the halves joined into 1 flow, got %d", len(tcp))
			}
			f := tcp[0]
			fd := capture.Classify(f)
			if fd.Verdict != c.verdict || f.Client() != c.client || f.Server() != c.server {
				t.Errorf("%v → %v %v (%s), want %v → %v %v", f.Client(), f.Server(), fd.Verdict, fd.Sentence, c.client, c.server, c.verdict)
			}
			if !strings.HasSuffix(fd.Sentence, "; its replies were seen here translated back ("+c.seenAs+")") {
				t.Errorf("sentence %q does not say the replies were seen as %s", fd.Sentence, c.seenAs)
			}
			from, to, _ := f.RepliesSeenAs()
			if tb.Lookup(key(f.Proto(), from, to)) != f || tb.Lookup(f.Key()) != f {
				t.Error("the key of either half does not find the joined flow")
			}
		})
	}
}

// TestJoinLeavesUnrelatedHalvesApart: one-way flows that share an endpoint
// but are not one connection stay apart: a SYN-ACK acknowledging another
// SYN, UDP from another port, two clients of one server.
func TestJoinLeavesUnrelatedHalvesApart(t *testing.T) {
	b := ct.NewBuilder()
	other := netip.MustParseAddrPort("10.244.0.8:43210")
	cases := []struct {
		name   string
		frames [][]byte
	}{
		{"another SYN's SYN-ACK", [][]byte{b.TCP(natNode, natExt, ct.SYN, 100, 0, nil), b.TCP(natExt, natPod, ct.SYN|ct.ACK, 900, 5001, nil)}},
		{"UDP from another port", [][]byte{b.UDP(natNode, natExt, []byte("a")), b.UDP(natExt, netip.AddrPortFrom(natPod.Addr(), 1234), []byte("b"))}},
		{"two clients, no translation", [][]byte{b.UDP(natPod, natExt, []byte("a")), b.UDP(natExt, other, []byte("b")),
			b.UDP(natExt, natPod, []byte("c"))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb, _ := pcapOf(t, "n1/nsl-br0", c.frames...)
			for _, f := range tb.Flows() {
				if _, _, ok := f.RepliesSeenAs(); ok {
					t.Errorf("%v joined with a flow that is not its reply half", f.Key())
				}
			}
		})
	}
}

// TestReplyDroppedBehindMasquerade: the replies to a masqueraded pod reach
// the node's bridged uplink, translated back, and never its veth (the
// node's FORWARD chain drops them): the comparison of the two captures says
// the reply was dropped on the node, not that the request never left.
// tshark still counts the uplink's two halves as the two conversations they
// are on the wire, and so does Conversations.
func TestReplyDroppedBehindMasquerade(t *testing.T) {
	b := ct.NewBuilder()
	syn := b.TCP(natPod, natExt, ct.SYN, 100, 0, nil)
	veth, _ := pcapOf(t, "n1/veth1", syn, syn, syn)
	masq, back := b.TCP(natNode, natExt, ct.SYN, 100, 0, nil), b.TCP(natExt, natPod, ct.SYN|ct.ACK, 900, 101, nil)
	uplink, path := pcapOf(t, "n1/nsl-br0", masq, back, masq, back, masq, back)
	diffs := capture.Compare(veth, uplink)
	want := "reply seen on n1/nsl-br0 but not on n1/veth1 (dropped on the node): 3 tcp packets from 192.168.2.10:80 to 10.250.0.1:43210"
	if len(diffs) != 1 || diffs[0].Verdict != capture.ReplyDropped || diffs[0].Sentence != want {
		t.Fatalf("differences %+v, want one: %s", diffs, want)
	}
	if v := capture.Judge(only(t, uplink)); v != capture.TCPHandshakeStalled {
		t.Errorf("the uplink's flow is %v, want %v", v, capture.TCPHandshakeStalled)
	}
	ps, err := capture.PacketsOf(path, "n1/nsl-br0", only(t, uplink).Key(), 0)
	if err != nil || len(ps) != 6 || !ps[0].FromClient || ps[1].FromClient || ps[1].Summary != "SYN|ACK seq=900 len=0" {
		t.Errorf("packets of the joined flow = %+v, %v; want both halves', in order", ps, err)
	}
	convs := uplink.Conversations()
	if len(convs) != 2 || convs[0].PacketsAB+convs[0].PacketsBA != 3 || convs[1].PacketsAB+convs[1].PacketsBA != 3 {
		t.Errorf("conversations %+v, want each half's 3 packets under its own addresses", convs)
	}
	tshark := needPeer(t, "tshark")
	compareConversationsExactly(t, convs, tsharkConversations(t, tshark, path))
}

// compareConversationsExactly is compareConversations for a small file.
func compareConversationsExactly(t *testing.T, ours []capture.Conversation, theirs []peerConv) {
	t.Helper()
	if len(ours) != len(theirs) {
		t.Fatalf("%d conversations, tshark has %d", len(ours), len(theirs))
	}
	for _, c := range ours {
		found := false
		for _, w := range theirs {
			ab := w.a == c.A && w.b == c.B && w.framesAB == c.PacketsAB && w.framesBA == c.PacketsBA
			ba := w.a == c.B && w.b == c.A && w.framesAB == c.PacketsBA && w.framesBA == c.PacketsAB
			found = found || ab || ba
		}
		if !found {
			t.Errorf("%+v is not in tshark's table %+v", c, theirs)
		}
	}
}
