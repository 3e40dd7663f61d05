package probes

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/netsleuth/netsleuth/model"
)

// creatorProbe creates objects only when From is set.
type creatorProbe struct{ fakeProbe }

func (creatorProbe) Creates(o Options) bool { return o.From != "" }

func TestReadOnlySkipsWhatCreates(t *testing.T) {
	var mu sync.Mutex // probes run concurrently
	ran := map[string]bool{}
	mark := func(id string) func(context.Context, *Env, Recorder) error {
		return func(_ context.Context, _ *Env, rec Recorder) error {
			mu.Lock()
			ran[id] = true
			mu.Unlock()
			rec.Finding(model.Finding{ID: id + ".ok", Status: model.StatusPass, Title: "ok"})
			return nil
		}
	}
	write := []model.Permission{
		{Resource: "nodes", Verbs: []string{"list"}},
		{Resource: "namespaces", Verbs: []string{"create", "get"}},
		{Resource: "pods", Subresource: "exec", Verbs: []string{"create"}},
	}
	static := fakeProbe{id: "static", run: mark("static"), rbac: []model.Permission{{Resource: "pods", Verbs: []string{"get", "list", "watch"}}}}
	active := fakeProbe{id: "active", run: mark("active"), rbac: write}
	lint := creatorProbe{fakeProbe{id: "lint", run: mark("lint"), rbac: write}}
	ps := ReadOnly([]Probe{static, active, lint}, Options{})
	sink := &events{}
	Run(context.Background(), ps, &Env{}, sink, RunnerOptions{})
	if !ran["static"] || !ran["lint"] {
		t.Errorf("read-only probes did not run: %v", ran)
	}
	if ran["active"] {
		t.Fatal("--read-only ran a probe that creates namespaces")
	}
	f := onlyFinding(t, sink, "active")
	if f.ID != FindingReadOnly || f.Status != model.StatusSkip {
		t.Fatalf("finding = %s %s, want one %s skip", f.ID, f.Status, FindingReadOnly)
	}
	if strings.Contains(f.RootCause, "\n") || !strings.Contains(f.RootCause, "create namespaces") || !strings.Contains(f.RootCause, "create pods/exec") ||
		strings.Contains(f.RootCause, "list nodes") {
		t.Errorf("root cause %q: want one line naming exactly the writes", f.RootCause)
	}
	// The same option-dependent probe creates when its option asks for it.
	if got := Writes(lint, Options{From: "a/b"}); len(got) != 2 {
		t.Errorf("Writes with --from = %v, want the two writing permissions", got)
	}
}
