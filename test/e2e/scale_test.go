//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
)

const synthSel = "netsleuth.lab/synthetic"

// synthCounts counts the synthetic objects by kind.
func synthCounts(t *testing.T) map[string]int {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	sel := metav1.ListOptions{LabelSelector: synthSel}
	n := map[string]int{}
	nodes, err := kube.CoreV1().Nodes().List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	n["nodes"] = len(nodes.Items)
	nss, err := kube.CoreV1().Namespaces().List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	n["namespaces"] = len(nss.Items)
	pods, err := kube.CoreV1().Pods("").List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	n["pods"] = len(pods.Items)
	svcs, err := kube.CoreV1().Services("").List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	n["services"] = len(svcs.Items)
	pols, err := kube.NetworkingV1().NetworkPolicies("").List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	n["networkpolicies"] = len(pols.Items)
	return n
}

// TestSynthClusterSmall: `lab synth small` fills the lab's API server with
// 200 NotReady nodes, 6,000 pods, 500 Services and 200 policies; the static
// probes run to the end on it; `lab synth off` removes every object.
func TestSynthClusterSmall(t *testing.T) {
	exclusive(t)
	t.Cleanup(func() {
		if out, err := labCmd("synth", "off"); err != nil {
			t.Errorf("lab synth off: %v\n%s", err, out)
		}
	})
	start := time.Now()
	lab(t, "synth", "small")
	t.Logf("lab synth small took %.1fs", time.Since(start).Seconds())
	want := map[string]int{"nodes": 200, "namespaces": 20, "pods": 6000, "services": 500, "networkpolicies": 200}
	got := synthCounts(t)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("synthetic %s: %d, want %d", k, got[k], v)
		}
	}

	start = time.Now()
	r, code := check(t, "--read-only")
	t.Logf("check --read-only on the small synthetic cluster took %.1fs (exit %d)", time.Since(start).Seconds(), code)
	if code == 2 {
		t.Fatalf("exit 2 on the synthetic cluster")
	}
	var synthServices, panics int
	for _, f := range r.Findings {
		if f.Probe == "services" && f.Subject != nil && strings.HasPrefix(f.Subject.Namespace, "nsl-synth-") {
			synthServices++
		}
		if f.ID == "runner.panic" || f.ID == "runner.timeout" {
			panics++
			t.Errorf("%s: %s %s", f.Probe, f.ID, f.RootCause)
		}
	}
	// JSON keeps a verdict for every synthetic Service.
	if synthServices < 500 {
		t.Errorf("the services probe judged %d synthetic Services, want all 500", synthServices)
	}
	for _, id := range []string{"services", "podcidr", "policy"} {
		if !hasProbe(r, id) {
			t.Errorf("no finding from %s on the synthetic cluster", id)
		}
	}

	lab(t, "synth", "off")
	for k, v := range synthCounts(t) {
		if v != 0 {
			t.Errorf("after synth off %d synthetic %s are left", v, k)
		}
	}
}

func hasProbe(r *model.Report, id string) bool {
	for _, f := range r.Findings {
		if f.Probe == id {
			return true
		}
	}
	return false
}
