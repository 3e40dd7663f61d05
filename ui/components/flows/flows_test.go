package flows

import (
	"fmt"
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/ui/internal/uitest"
	"github.com/netsleuth/netsleuth/ui/theme"
)

func evidence(t *testing.T, id string) []string {
	for _, f := range uitest.Findings(t, "snat", "coredns-zero") {
		if f.ID == id {
			return f.Evidence
		}
	}
	t.Fatalf("no finding %s", id)
	return nil
}

// TestRenderSNAT: the external probe's captures on the pod veth and the
// uplink, classified; the source-not-translated rows are the proof.
func TestRenderSNAT(t *testing.T) {
	tb := Parse(evidence(t, "external.pod-unreachable"))
	if len(tb.Captures) != 2 || len(tb.Flows) != 6 {
		t.Fatalf("parsed %d captures and %d flows, want 2 and 6", len(tb.Captures), len(tb.Flows))
	}
	if tb.Flows[3].Class != "source-not-translated" || !tb.Flows[3].Problem() {
		t.Errorf("flow 4 = %+v, want a source-not-translated problem", tb.Flows[3])
	}
	golden.RequireEqual(t, strings.Join(Render(tb, theme.New(false, true), 80), "\n"))
}

func TestRenderDNSColor(t *testing.T) {
	tb := Parse(evidence(t, "dns.live-kube-dns"))
	golden.RequireEqual(t, strings.Join(Render(tb, theme.New(true, true), 100), "\n"))
}

func TestClassify(t *testing.T) {
	for sentence, want := range map[string]string{
		"SYN answered by RST: connection refused, the path to 10.0.0.1 works but nothing listens on port 80": "tcp-refused",
		"connection established (10 bytes sent, 20 received)":                                                "tcp-established",
		"connection established, reset by the server after 30 bytes":                                         "tcp-reset",
		"ICMP port unreachable from 10.244.0.1":                                                              "icmp-unreachable",
		"ICMP fragmentation needed (next-hop MTU 1400) from 10.0.0.1":                                        "icmp-frag-needed",
		"DNS NXDOMAIN for x.example (A): the name does not exist":                                            "dns-nxdomain",
		"DNS query for a.b (A) with no answer (1 query to 10.96.0.10:53)":                                    "dns-no-answer",
		"reply seen on eth0 but not on veth1 (dropped on the node): 2 TCP packets from a to b":               "reply-dropped",
		"request seen on veth1, never left on eth0 (TCP a to b)":                                             "request-not-forwarded",
		"3 GRE packets between 10.0.0.1 and 10.0.0.2":                                                        "other-traffic",
	} {
		if got := Classify(sentence); got != want {
			t.Errorf("Classify(%q) = %s, want %s", sentence, got, want)
		}
	}
}

// Flows10k is a capture evidence of n flows, for benchmarks.
func Flows10k(n int) []string {
	ev := []string{fmt.Sprintf("capture on node nsl-node1, uplink eth0: %d packet(s), %d flow(s)", 3*n, n)}
	for i := range n {
		ev = append(ev, fmt.Sprintf("  nsl-node1 eth0: SYN with no reply (1 SYN to 10.%d.%d.%d:443, nothing back)", i>>16&255, i>>8&255, i&255))
	}
	return ev
}

func BenchmarkParseRender10kFlows(b *testing.B) {
	ev := Flows10k(10000)
	th := theme.New(true, true)
	for b.Loop() {
		Render(Parse(ev), th, 120)
	}
}

func TestParseComparisonAndMore(t *testing.T) {
	tb := Parse([]string{
		"node agent on nsl-node1: ip_forward=1",
		"capture on node nsl-node1, pod veth veth1: 3 packet(s), 1 flow(s)",
		"  nsl-node1 veth1: SYN with no reply (3 SYNs to 10.96.0.10:53, nothing back)",
		"capture on node nsl-node1, uplink eth0: did not run: no such interface",
		"  pod veth → uplink: request seen on veth1, never left on eth0 (TCP 10.244.0.5:4000 to 10.96.0.10:53)",
		"  … 4 more flow(s) in the pcap",
	})
	if len(tb.Captures) != 2 || tb.Captures[1].Summary != "did not run: no such interface" || tb.Captures[0].Pcap != "" {
		t.Errorf("captures = %+v", tb.Captures)
	}
	if len(tb.Flows) != 2 || tb.Flows[1].Where != "pod veth → uplink" || tb.Flows[1].Class != "request-not-forwarded" {
		t.Errorf("flows = %+v", tb.Flows)
	}
	if len(tb.More) != 1 || IsCaptureLine("node agent on nsl-node1: ip_forward=1") {
		t.Errorf("more = %v, or a node line counted as a capture line", tb.More)
	}
}
