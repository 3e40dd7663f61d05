package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/all"
)

// The ClusterRoles committed in assets/rbac are what the probes declare now:
// a probe that declares a new permission without `go generate ./cmd` fails.
func TestRBACAssetsAreGenerated(t *testing.T) {
	view, active, err := RBACManifests(all.Probes())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"netsleuth-view.yaml": view, "netsleuth-active.yaml": active} {
		got, err := os.ReadFile(filepath.Join("..", "assets", "rbac", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("assets/rbac/%s differs from the probes' declared RBAC; run `go generate ./cmd`\n--- generated:\n%s", name, want)
		}
	}
}

// rbacCommand runs `netsleuth rbac args...` with the real probes and decodes
// the ClusterRole it prints.
func rbacCommand(t *testing.T, args ...string) *rbacv1.ClusterRole {
	t.Helper()
	var out, errOut bytes.Buffer
	app := App{Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Probes: all.Probes, Argv0: "netsleuth"}
	if code := Execute(context.Background(), app, append([]string{"rbac"}, args...)); code != 0 {
		t.Fatalf("rbac %v: exit %d: %s", args, code, errOut.String())
	}
	_, doc, ok := strings.Cut(out.String(), "---\n")
	if !ok || !strings.Contains(out.String(), "kubectl create clusterrolebinding") {
		t.Fatalf("output has no binding example and manifest:\n%s", out.String())
	}
	var r rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict([]byte(doc), &r); err != nil {
		t.Fatalf("not a ClusterRole: %v\n%s", err, doc)
	}
	return &r
}

func grants(r *rbacv1.ClusterRole, group, resource, verb string) bool {
	return slices.ContainsFunc(r.Rules, func(p rbacv1.PolicyRule) bool {
		return slices.Contains(p.APIGroups, group) && slices.Contains(p.Resources, resource) && slices.Contains(p.Verbs, verb)
	})
}

func TestRBACCommand(t *testing.T) {
	view := rbacCommand(t)
	if view.Name != "netsleuth-view" {
		t.Errorf("rbac printed %s, want netsleuth-view", view.Name)
	}
	for _, rule := range view.Rules {
		for _, v := range rule.Verbs {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("netsleuth-view grants %s on %v: not a read", v, rule.Resources)
			}
		}
	}
	for _, want := range [][3]string{{"", "nodes", "list"}, {"", "nodes/proxy", "get"}, {"", "pods", "list"},
		{"networking.k8s.io", "networkpolicies", "list"}, {"discovery.k8s.io", "endpointslices", "list"}} {
		if !grants(view, want[0], want[1], want[2]) {
			t.Errorf("netsleuth-view lacks %s %s (group %q)", want[2], want[1], want[0])
		}
	}
	active := rbacCommand(t, "--active")
	if active.Name != "netsleuth-active" {
		t.Errorf("rbac --active printed %s", active.Name)
	}
	for _, want := range [][3]string{{"", "namespaces", "create"}, {"", "pods", "create"}, {"", "pods/exec", "create"},
		{"", "pods/ephemeralcontainers", "update"}, {"", "services", "create"}, {"", "namespaces", "delete"}} {
		if !grants(active, want[0], want[1], want[2]) {
			t.Errorf("netsleuth-active lacks %s %s", want[2], want[1])
		}
	}
	for _, r := range []*rbacv1.ClusterRole{view, active} { // netsleuth never reads a Secret's value
		for _, rule := range r.Rules {
			if slices.Contains(rule.Resources, "secrets") || slices.Contains(rule.Resources, "*") || slices.Contains(rule.Verbs, "*") {
				t.Errorf("%s grants %v on %v: no probe may read Secrets", r.Name, rule.Verbs, rule.Resources)
			}
		}
	}
	for _, rule := range view.Rules { // active is a superset: binding it alone is enough
		for _, v := range rule.Verbs {
			if !grants(active, rule.APIGroups[0], rule.Resources[0], v) {
				t.Errorf("netsleuth-active lacks view's %s %v", v, rule.Resources)
			}
		}
	}
}

// readOnlySelection is the probe set of `check --read-only args...` with the
// real probes: probe ID → whether it runs (false: a skip stands in for it).
func readOnlySelection(t *testing.T, args ...string) map[string]bool {
	t.Helper()
	app := App{Streams: genericiooptions.NewTestIOStreamsDiscard(), Probes: all.Probes, Argv0: "netsleuth"}
	o := NewCheckOptions(app, genericclioptions.NewConfigFlags(true))
	c := &cobra.Command{}
	o.AddFlags(c.Flags())
	if err := c.ParseFlags(append([]string{"--read-only"}, args...)); err != nil {
		t.Fatal(err)
	}
	if err := o.Complete(c); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range o.selected {
		out[p.Info().ID] = !probes.IsSkipped(p)
	}
	return out
}

func TestReadOnlySelection(t *testing.T) {
	got := readOnlySelection(t)
	for _, id := range []string{"kubelet", "runtime", "podcidr", "services", "ipmasq", "policy"} {
		if run, ok := got[id]; !ok || !run {
			t.Errorf("--read-only does not run static probe %s (selection %v)", id, got)
		}
	}
	for _, id := range []string{"pod-to-pod", "dns", "node-sysctl", "pod-to-service"} {
		if run, ok := got[id]; !ok || run {
			t.Errorf("--read-only does not replace active probe %s by a skip (selection %v)", id, got)
		}
	}
	// policy creates a stand-in only to verify a --from/--to answer.
	if got := readOnlySelection(t, "--probe", "policy", "--from", "a/b", "--to", "c/d:80"); got["policy"] {
		t.Errorf("--read-only runs policy with --from/--to (a stand-in pod): %v", got)
	}
}
