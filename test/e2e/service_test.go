//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netsleuth/netsleuth/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// assertNoServiceLeft fails when a Service netsleuth made survives its run.
func assertNoServiceLeft(t *testing.T) {
	t.Helper()
	svcs, err := kube.CoreV1().Services("").List(ctxT(t, 20*time.Second), metav1.ListOptions{LabelSelector: managedSel})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs.Items {
		t.Errorf("netsleuth left service/%s/%s behind", s.Namespace, s.Name)
	}
}

func TestServiceHealthy(t *testing.T) {
	r, code := active(t, "--probe", "pod-to-service")
	assertNoServiceLeft(t)
	for _, node := range []string{"Node/nsl-node1", "Node/nsl-node2"} {
		f := find(t, r, want{id: "pod-to-service.ok", status: "pass", subject: node})
		ev := strings.Join(f.Evidence, "\n")
		if !strings.Contains(ev, "via the ClusterIP): answered by pod=netsleuth-pod-") || !strings.Contains(ev, "NodePort") {
			t.Errorf("%s: evidence does not show the ClusterIP's backend and the NodePorts:\n%s", node, ev)
		}
	}
	if code != 0 {
		t.Errorf("exit %d on a healthy lab", code)
	}
}

// TestServiceKubeProxyStopped: with kube-proxy stopped and its rules
// removed on nsl-node1, pod-to-pod still works, so the probe must blame
// kube-proxy on nsl-node1 (read from its nat table) and keep nsl-node2 healthy.
func TestServiceKubeProxyStopped(t *testing.T) {
	withFault(t, "kube-proxy", "--node", "nsl-node1")
	dir := t.TempDir()
	r, code := active(t, "--probe", "pod-to-service", "--capture-dir", dir)
	assertNoServiceLeft(t)
	noRules := want{id: "node.kube-proxy-no-rules", status: "fail", subject: "Node/nsl-node1",
		rootCause: `Node nsl-node1 has no KUBE-SERVICES chain .*kube-proxy is not running there`,
		fix:       "systemctl restart kube-proxy"}
	cause := find(t, r, noRules)
	f := symptomOf(t, r, cause, "pod-to-service.kube-proxy")
	if !fixMentions(f, "kubectl -n kube-system rollout restart ds/kube-proxy") {
		t.Errorf("no DaemonSet restart fix: %+v", f.Fixes)
	}
	ev := strings.Join(append(f.Evidence, cause.Evidence...), "\n")
	for _, s := range []string{"via the ClusterIP", "direct to endpoint", "no KUBE-SERVICES chain"} {
		if !strings.Contains(ev, s) {
			t.Errorf("evidence lacks %q:\n%s", s, ev)
		}
	}
	// The probe's own retry of the ClusterIP, captured at the pod's veth on
	// nsl-node1 and on the way to the endpoint on nsl-node2: the SYNs go
	// unanswered, or leave untranslated, and never reach the endpoint's node.
	for _, s := range []string{"capture on node nsl-node1, pod veth of the source", "route to endpoint",
		"capture on node nsl-node2, route to the source", "pcap saved to " + dir} {
		if !strings.Contains(ev, s) {
			t.Errorf("the capture evidence lacks %q:\n%s", s, ev)
		}
	}
	if strings.Contains(ev, "did not run") {
		t.Errorf("a capture point did not run:\n%s", ev)
	}
	if !strings.Contains(ev, "SYN with no reply") && !strings.Contains(ev, "never left on") && !strings.Contains(ev, "unreachable") {
		t.Errorf("the capture names neither an unanswered SYN, a request that never left nor an unreachable:\n%s", ev)
	}
	pcaps, _ := filepath.Glob(filepath.Join(dir, "*-pod-to-service-nsl-node1-*.pcap"))
	shown := false
	for _, p := range pcaps {
		out, err := exec.Command("tshark", "-n", "-r", p, "-Y", "tcp.flags.syn==1").Output()
		shown = shown || (err == nil && len(strings.TrimSpace(string(out))) > 0)
	}
	if !shown {
		t.Errorf("no saved pcap of nsl-node1 shows the retry's SYNs in tshark: %v\n%s", pcaps, ev)
	}
	find(t, r, want{id: "pod-to-service.ok", status: "pass", subject: "Node/nsl-node2"})
	if code != 1 {
		t.Errorf("exit %d with kube-proxy stopped, want 1", code)
	}
	// The lab runs kube-proxy as a process, so the fix is the node's service
	// manager: the lab's node entry maps systemctl onto it.
	proveFix(t, r, noRules,
		func() *model.Report { r, _ := active(t, "--probe", "pod-to-service"); return r })
}
