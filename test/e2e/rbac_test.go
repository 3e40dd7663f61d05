//go:build e2e

package e2e

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/netsleuth/netsleuth/model"
)

// shippedRules are the rules of the ClusterRole `netsleuth rbac [--active]`
// prints: the role under test is the binary's own output.
func shippedRules(t *testing.T, active bool) []rbacv1.PolicyRule {
	t.Helper()
	args := []string{"rbac"}
	if active {
		args = append(args, "--active")
	}
	out, stderr, code := netsleuthCmd(t, args...)
	if code != 0 {
		t.Fatalf("netsleuth %v: exit %d: %s", args, code, stderr)
	}
	_, doc, _ := strings.Cut(out, "---\n")
	var r rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict([]byte(doc), &r); err != nil || len(r.Rules) == 0 {
		t.Fatalf("netsleuth %v printed no ClusterRole (%v):\n%s", args, err, out)
	}
	return r.Rules
}

// checkAs runs `netsleuth check -o json` with kubeconfig kc and returns the
// validated report and the raw JSON.
func checkAs(t *testing.T, kc string, args ...string) (*model.Report, string) {
	t.Helper()
	stdout, stderr, code := netsleuthCmd(t, append([]string{"check", "-o", "json", "--kubeconfig", kc}, args...)...)
	if code == 2 {
		t.Fatalf("check %v: exit 2: %s", args, stderr)
	}
	var r model.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s\nstderr: %s", err, stdout, stderr)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("report breaks the schema contract: %v", err)
	}
	return &r, stdout + stderr
}

// rbacDenied matches the API server's RBAC refusal wherever it is quoted (a
// runner.forbidden finding, a note, evidence); PodSecurity refusals, also
// 403s, do not match.
var rbacDenied = regexp.MustCompile(`cannot \S+ resource "[^"]*"`)

func assertNoRBACDenial(t *testing.T, r *model.Report, raw string) {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID == "runner.forbidden" {
			t.Errorf("%s: %s: %s", f.Probe, f.ID, f.RootCause)
		}
	}
	if m := rbacDenied.FindAllString(raw, 5); len(m) > 0 {
		t.Errorf("the run was refused by RBAC somewhere: %q", m)
	}
}

func byProbe(r *model.Report) map[string][]model.Finding {
	out := map[string][]model.Finding{}
	for _, f := range r.Findings {
		out[f.Probe] = append(out[f.Probe], f)
	}
	return out
}

// staticProbes are the default probes that create nothing.
var staticProbes = []string{"ipmasq", "policy", "runtime", "kubelet", "podcidr", "services"}

// verdicts is probe → its findings as "status id", sorted.
func verdicts(r *model.Report) map[string]string {
	out := map[string]string{}
	for id, fs := range byProbe(r) {
		var v []string
		for _, f := range fs {
			v = append(v, string(f.Status)+" "+f.ID)
		}
		slices.Sort(v)
		out[id] = strings.Join(v, ", ")
	}
	return out
}

// TestRBACViewReadOnly: bound to netsleuth-view alone, `check --read-only`
// runs every static probe to the end without one RBAC refusal and with the
// same verdicts as a cluster admin gets; each active probe is one skip
// finding saying why.
func TestRBACViewReadOnly(t *testing.T) {
	ns := namespace(t, nil)
	kc := tokenKubeconfig(t, ns, shippedRules(t, false))
	r, raw := checkAs(t, kc, "--read-only")
	assertNoRBACDenial(t, r, raw)
	admin, _ := checkAs(t, kubeconfig, "--read-only")
	got, want := verdicts(r), verdicts(admin)
	for _, id := range staticProbes {
		if got[id] == "" || got[id] != want[id] {
			t.Errorf("static probe %s as netsleuth-view: %q; as admin: %q", id, got[id], want[id])
		}
		for _, f := range byProbe(r)[id] {
			if f.Status == model.StatusError {
				t.Errorf("static probe %s: %s: %s %s", id, f.ID, f.Title, f.RootCause)
			}
		}
	}
	for id, fs := range byProbe(r) {
		if slices.Contains(staticProbes, id) {
			continue
		}
		if len(fs) != 1 || fs[0].ID != "runner.read-only" || fs[0].Status != model.StatusSkip || strings.Contains(fs[0].RootCause, "\n") {
			t.Errorf("active probe %s under --read-only: want one runner.read-only skip, got %+v", id, fs)
		}
	}
}

// TestRBACViewActiveProbesForbidden: bound to netsleuth-view alone, each
// active probe is one error finding naming the verb and resource refused
// and netsleuth-active, the role to bind; nothing is created.
func TestRBACViewActiveProbesForbidden(t *testing.T) {
	ns := namespace(t, nil)
	kc := tokenKubeconfig(t, ns, shippedRules(t, false))
	started := time.Now().Add(-time.Second)
	active := []string{"pod-to-pod", "node-sysctl", "pod-to-service", "dns"}
	args := append([]string{}, agentFlags...)
	for _, id := range active {
		args = append(args, "--probe", id)
	}
	r, _ := checkAs(t, kc, args...)
	got := byProbe(r)
	for _, id := range active {
		var denied []model.Finding
		for _, f := range got[id] {
			if f.ID == "runner.forbidden" {
				denied = append(denied, f)
			}
		}
		if len(denied) != 1 {
			t.Errorf("%s: want one runner.forbidden finding, got %d of %+v", id, len(denied), got[id])
			continue
		}
		f := denied[0]
		if f.Status != model.StatusError || !strings.Contains(f.RootCause, "create namespaces") ||
			!strings.Contains(f.RootCause, "netsleuth-active") || !fixMentions(f, "--clusterrole=netsleuth-active") {
			t.Errorf("%s: the finding does not name create namespaces and netsleuth-active: %s %+v", id, f.RootCause, f.Fixes)
		}
	}
	nss, err := kube.CoreV1().Namespaces().List(ctxT(t, 10*time.Second), metav1.ListOptions{LabelSelector: managedSel})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nss.Items {
		if n.CreationTimestamp.After(started) && strings.Contains(raw(r), n.Name) {
			t.Errorf("a run refused by RBAC created namespace %s", n.Name)
		}
	}
}

func raw(r *model.Report) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// TestRBACActiveDefaultSuite: bound to netsleuth-active alone, the default
// suite with its agents is never refused by RBAC: the roles generated from
// the probes' declarations cover every call the probes really make.
func TestRBACActiveDefaultSuite(t *testing.T) {
	ns := namespace(t, nil)
	kc := tokenKubeconfig(t, ns, shippedRules(t, true))
	r, raw := checkAs(t, kc, agentFlags...)
	assertNoRBACDenial(t, r, raw)
	if len(byProbe(r)) < 10 {
		t.Errorf("the default suite reported only %d probes", len(byProbe(r)))
	}
}
