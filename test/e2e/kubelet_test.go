//go:build e2e

package e2e

import (
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// kubeletChecks are the checks of assets/kubelet-checks.yaml the lab's
// kubelets must pass.
var kubeletChecks = []string{"make-iptables-util-chains", "anonymous-auth", "authorization-mode", "read-only-port",
	"cgroup-driver", "cluster-dns", "cluster-domain"}

// TestKubeletHealthy: every check passes on both lab kubelets, read through
// configz with no node login.
func TestKubeletHealthy(t *testing.T) {
	exclusive(t)
	r, code := check(t, "--probe", "kubelet")
	if code != 0 {
		t.Errorf("exit %d on healthy kubelets, want 0", code)
	}
	for _, node := range []string{"nsl-node1", "nsl-node2"} {
		for _, c := range kubeletChecks {
			find(t, r, want{id: "kubelet." + c, status: "pass", subject: "Node/" + node})
		}
	}
	f := find(t, r, want{id: "kubelet.cluster-dns", subject: "Node/nsl-node1"})
	if !strings.Contains(f.Title, "10.96.0.10 is the kube-dns Service ClusterIP") {
		t.Errorf("pass finding does not say what was verified: %q", f.Title)
	}
}

// TestKubeletMakeIPTablesUtilChainsOff: the CIS item of seed 000, with its
// three remediation methods, on the node that has it, and only there.
func TestKubeletMakeIPTablesUtilChainsOff(t *testing.T) {
	withFault(t, "kubelet-config", "--node", "nsl-node2", "--set", "makeIPTablesUtilChains=false")
	r, code := check(t, "--probe", "kubelet")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	f := find(t, r, want{id: "kubelet.make-iptables-util-chains", status: "fail", subject: "Node/nsl-node2",
		rootCause: `nsl-node2 runs with makeIPTablesUtilChains=false`, fix: "--make-iptables-util-chains=true"})
	// The generated edit and its configz check come first, then the seed's three methods.
	if len(f.Fixes) != 5 || f.Fixes[0].Node != "nsl-node2" {
		t.Fatalf("want the generated edit on nsl-node2 and the seed's three remediation methods, got %+v", f.Fixes)
	}
	for _, s := range []string{"10-kubelet-args.conf", "systemctl daemon-reload", "/api/v1/nodes/nsl-node2/proxy/configz", "NODE_NAME=nsl-node2"} {
		if !fixMentions(f, s) {
			t.Errorf("remediation lacks %q", s)
		}
	}
	find(t, r, want{id: "kubelet.make-iptables-util-chains", status: "pass", subject: "Node/nsl-node1"})
}

// TestKubeletForbidden: without get on nodes/proxy the probe ends in one
// error finding that names the permission, not a crash.
func TestKubeletForbidden(t *testing.T) {
	ns := namespace(t, nil)
	kc := tokenKubeconfig(t, ns, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list"}}})
	stdout, stderr, code := netsleuthCmd(t, "check", "-o", "json", "--kubeconfig", kc, "--probe", "kubelet")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, stderr)
	}
	for _, s := range []string{`"id": "runner.forbidden"`, `nodes/proxy`, `kubectl auth can-i get nodes --subresource=proxy`} {
		if !strings.Contains(stdout, s) {
			t.Errorf("report lacks %q:\n%s", s, stdout)
		}
	}
}
