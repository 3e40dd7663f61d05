package podgrid

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
	"github.com/netsleuth/netsleuth/ui/theme"
)

func probeEvidence(fs []model.Finding) []string {
	var ev []string
	for _, f := range fs {
		if f.Probe == Probe {
			ev = append(ev, f.Evidence...)
		}
	}
	return ev
}

// TestRenderHealthy: the lab's two nodes, every pair answering; the
// same-node pairs (to the peer agent) sit on the diagonal.
func TestRenderHealthy(t *testing.T) {
	g := Parse(probeEvidence(uitest.Findings(t, "healthy")))
	if len(g.Nodes) != 2 || len(g.Cell("nsl-node1", "nsl-node1")) != 1 || len(g.Cell("nsl-node1", "nsl-node2")) != 1 {
		t.Fatalf("grid = %+v", g)
	}
	golden.RequireEqual(t, strings.Join(Render(g, theme.New(false, true), 80), "\n"))
}

// crossNodeBlocked are the pair lines of a cross-node failure: TCP times
// out one way, UDP is lost, ICMP is not permitted to the agent.
var crossNodeBlocked = []string{
	"pod agent ns/netsleuth-pod-nsl-node1 (10.244.0.6) on node nsl-node1 → ICMP echo 10.244.1.6 ×3 (ping -c 3 10.244.1.6): permission denied",
	"pod agent ns/netsleuth-pod-nsl-node1 (10.244.0.6) on node nsl-node1 → TCP connect 10.244.1.6:8765 (nc -vz -w2 10.244.1.6 8765): timeout: dial tcp 10.244.1.6:8765: i/o timeout",
	"pod agent ns/netsleuth-pod-nsl-node1 (10.244.0.6) on node nsl-node1 → UDP echo 10.244.1.6:8765 ×3 (echo x | nc -u -w2 10.244.1.6 8765): timeout (0/3 answered)",
	"pod agent ns/netsleuth-pod-nsl-node1 (10.244.0.6) on node nsl-node1 → TCP connect 10.244.0.5:8765 (nc -vz -w2 10.244.0.5 8765): ok (1/1 answered, avg 0.31 ms) from 10.244.0.6:53262",
	"pod agent ns/netsleuth-pod-nsl-node2 (10.244.1.6) on node nsl-node2 → TCP connect 10.244.0.6:8765 (nc -vz -w2 10.244.0.6 8765): ok (1/1 answered, avg 0.44 ms) from 10.244.1.6:54884",
	"pod agent ns/netsleuth-pod-nsl-node2 (10.244.1.6) on node nsl-node2 → UDP echo 10.244.0.6:8765 ×3 (echo x | nc -u -w2 10.244.0.6 8765): timeout (0/3 answered)",
	"node agent on nsl-node1: ip_forward=1, 4 routes read; errors: ",
}

func TestRenderCrossNodeBlocked(t *testing.T) {
	g := Parse(crossNodeBlocked)
	if txt, ok := cellText(g.Cell("nsl-node1", "nsl-node2")); ok || txt != "✗ timeout (udp ✗)" {
		t.Errorf("node1 → node2 = %q ok=%v, want the TCP timeout and the UDP loss", txt, ok)
	}
	if txt, ok := cellText(g.Cell("nsl-node2", "nsl-node1")); !ok || txt != "! 0.44 ms (udp ✗)" {
		t.Errorf("node2 → node1 = %q ok=%v, want TCP passing with UDP lost", txt, ok)
	}
	golden.RequireEqual(t, strings.Join(Render(g, theme.New(true, true), 80), "\n"))
}
