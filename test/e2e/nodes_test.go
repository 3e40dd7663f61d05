//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

func TestNodeSysctlHealthy(t *testing.T) {
	r, code := active(t, "--probe", "node-sysctl")
	for _, node := range []string{"Node/nsl-node1", "Node/nsl-node2"} {
		for _, id := range []string{"node.ip-forward", "node.bridge-nf-call-iptables", "node.conntrack"} {
			find(t, r, want{id: id, status: "pass", subject: node})
		}
	}
	if code != 0 {
		t.Errorf("exit %d on a healthy lab", code)
	}
}

// labMetadataStandIn is the lab's stand-in for a cloud metadata service:
// the external host's HTTP listener. Tests never send to 169.254.169.254.
const (
	labMetadataStandIn = "192.168.2.10:80"
	labUnusedAddress   = "10.250.0.200:80"
)

// TestExposureHealthy: with an unused metadata address the healthy lab
// exposes nothing: etcd listens on loopback only, the kubelet answers 401,
// 10255 and 8080 are closed.
func TestExposureHealthy(t *testing.T) {
	r, code := active(t, "--probe", "exposure", "--metadata-address", labUnusedAddress)
	find(t, r, want{id: "exposure.metadata", status: "pass", subject: "Endpoint/" + labUnusedAddress})
	find(t, r, want{id: "exposure.etcd", status: "pass", subject: "Node/nsl-node1"})
	find(t, r, want{id: "exposure.apiserver-insecure", status: "pass", subject: "Node/nsl-node1"})
	for _, node := range []string{"Node/nsl-node1", "Node/nsl-node2"} {
		f := find(t, r, want{id: "exposure.kubelet-anonymous", status: "pass", subject: node})
		if !strings.Contains(f.Title, "HTTP 401") {
			t.Errorf("%s: kubelet should answer 401 to anonymous requests: %s", node, f.Title)
		}
		find(t, r, want{id: "exposure.kubelet-readonly", status: "pass", subject: node})
	}
	if code != 0 {
		t.Errorf("exit %d on a healthy lab", code)
	}
}

func TestExposureMetadataReachable(t *testing.T) {
	r, code := active(t, "--probe", "exposure", "--metadata-address", labMetadataStandIn)
	f := find(t, r, want{id: "exposure.metadata", status: "fail", subject: "Endpoint/" + labMetadataStandIn,
		rootCause: `Pods can open connections to the metadata address 192\.168\.2\.10:80.*netsleuth-pod-nsl-node`,
		fix:       "except: [192.168.2.10/32]"})
	if !strings.Contains(strings.Join(f.Evidence, "\n"), "TCP connect 192.168.2.10:80 (nc -vz -w2 192.168.2.10 80)") {
		t.Errorf("evidence: %v", f.Evidence)
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
}

// TestExposureKubeletReadOnlyPort: a kubelet restarted with readOnlyPort
// 10255 on nsl-node2 is reachable from pods and named with the fix.
func TestExposureKubeletReadOnlyPort(t *testing.T) {
	withFault(t, "kubelet-config", "--node", "nsl-node2", "--set", "readOnlyPort=10255")
	r, code := active(t, "--probe", "exposure", "--metadata-address", labUnusedAddress)
	find(t, r, want{id: "exposure.kubelet-readonly", status: "fail", subject: "Node/nsl-node2",
		rootCause: `kubelet on node nsl-node2 serves its unauthenticated read-only API on 10\.250\.0\.2:10255`, fix: "readOnlyPort: 0"})
	find(t, r, want{id: "exposure.kubelet-readonly", status: "pass", subject: "Node/nsl-node1"})
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
}

// TestNodePortsHealthy: the lab has no host firewall, so every kubeadm port
// answers or resets from the neighbouring node (etcd, the scheduler and the
// controller-manager listen on loopback only: RST, still open), and no CNI
// agent DaemonSet runs, so there is no chain check.
func TestNodePortsHealthy(t *testing.T) {
	r, code := active(t, "--probe", "node-ports")
	f := find(t, r, want{id: "node-ports.ok", status: "pass", subject: "Node/nsl-node1"})
	if !strings.Contains(f.Title, "control-plane, worker") {
		t.Errorf("nsl-node1 is the API server's endpoint and should be a control plane: %s", f.Title)
	}
	ev := strings.Join(f.Evidence, "\n")
	for _, s := range []string{"TCP connect 10.250.0.1:6443", "→ TCP connect 10.250.0.1:2379 (nc -vz -w2 10.250.0.1 2379): connection refused", "on node nsl-node2"} {
		if !strings.Contains(ev, s) {
			t.Errorf("evidence lacks %q:\n%s", s, ev)
		}
	}
	find(t, r, want{id: "node-ports.ok", status: "pass", subject: "Node/nsl-node2"})
	if code != 0 {
		t.Errorf("exit %d on a healthy lab", code)
	}
}
