//go:build e2e

package e2e

import (
	"testing"
)

func TestNodeSysctlHealthy(t *testing.T) {
	r, code := active(t, "--probe", "node-sysctl")
	for _, node := range []string{"Node/nsl-node1", "Node/nsl-node2"} {
		for _, id := range []string{"node-sysctl.ip-forward", "node-sysctl.bridge-nf-call-iptables", "node-sysctl.conntrack"} {
			find(t, r, want{id: id, status: "pass", subject: node})
		}
	}
	if code != 0 {
		t.Errorf("exit %d on a healthy lab", code)
	}
}

// TestNodeSysctlIPForwardOff: node agents are hostNetwork pods, so the
// bridge CNI (which sets ip_forward=1 on every pod ADD) does not heal the fault.
func TestNodeSysctlIPForwardOff(t *testing.T) {
	withFault(t, "ip-forward", "--node", "nsl-node1")
	r, code := active(t, "--probe", "node-sysctl")
	find(t, r, want{id: "node-sysctl.ip-forward", status: "fail", subject: "Node/nsl-node1",
		rootCause: `net\.ipv4\.ip_forward is 0 on node nsl-node1`, fix: "sysctl -w net.ipv4.ip_forward=1"})
	find(t, r, want{id: "node-sysctl.ip-forward", status: "pass", subject: "Node/nsl-node2"})
	if code != 1 {
		t.Errorf("exit %d with ip_forward off, want 1", code)
	}
}
