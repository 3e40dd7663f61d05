//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/model"
)

// TestActiveMaxNodes: --max-nodes 1 on the two-node lab starts node agents
// on one node only, says so once (nodes.sampled), and a rerun picks the
// same node; nothing is left behind.
func TestActiveMaxNodes(t *testing.T) {
	exclusive(t)
	nodesRead := func(r *model.Report) []string {
		var out []string
		for _, f := range r.Findings {
			if f.ID == "node.ip-forward" && f.Subject != nil {
				out = append(out, f.Subject.Name)
			}
		}
		return out
	}
	r, code := active(t, "--probe", "node-sysctl", "--probe", "pod-to-pod", "--max-nodes", "1")
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	f := find(t, r, want{id: "nodes.sampled", status: "skip"})
	if !strings.Contains(f.Title, "sampled 1 of 2 Ready nodes") {
		t.Errorf("nodes.sampled title %q", f.Title)
	}
	n := 0
	for _, x := range r.Findings {
		if x.ID == "nodes.sampled" {
			n++
		}
	}
	first := nodesRead(r)
	if n != 1 || len(first) != 1 {
		t.Errorf("%d nodes.sampled findings and node.ip-forward on %v: want one of each", n, first)
	}
	find(t, r, want{id: "pod-to-pod.ok", status: "pass"})
	if code != 0 {
		t.Errorf("exit %d: %+v", code, r.Summary)
	}
	again, _ := active(t, "--probe", "node-sysctl", "--max-nodes", "1")
	if got := nodesRead(again); len(got) != 1 || len(first) == 1 && got[0] != first[0] {
		t.Errorf("a rerun sampled %v, the first run %v: want the same node", got, first)
	}
	_, stderr, code := netsleuthCmd(t, "check", "--kubeconfig", kubeconfig, "--max-nodes", "0")
	if code != 2 || !strings.Contains(stderr, "--max-nodes must be at least 1") {
		t.Errorf("--max-nodes 0: exit %d, %q", code, stderr)
	}
}
