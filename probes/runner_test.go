package probes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/netsleuth/netsleuth/model"
)

// fakeProbe is a probe whose Run is a function.
type fakeProbe struct {
	id     string
	run    func(ctx context.Context, env *Env, rec Recorder) error
	rbac   []model.Permission // nil: get and list on nodes
	agents []model.AgentUse
}

func (p fakeProbe) Info() model.ProbeInfo {
	perms := p.rbac
	if perms == nil {
		perms = []model.Permission{{Resource: "nodes", Verbs: []string{"get", "list"}}}
	}
	return model.ProbeInfo{ID: p.id, Title: "Fake " + p.id, Scenario: "Z", RBAC: perms, Agents: p.agents}
}

func (p fakeProbe) Run(ctx context.Context, env *Env, rec Recorder) error {
	return p.run(ctx, env, rec)
}

// events is a thread-safe sink that keeps every event.
type events struct {
	mu  sync.Mutex
	all []model.Event
}

func (s *events) Emit(e model.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, e)
}

func (s *events) of(probe string) []model.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []model.Event
	for _, e := range s.all {
		if e.Probe == probe {
			out = append(out, e)
		}
	}
	return out
}

func (s *events) findings(probe string) []model.Finding {
	var out []model.Finding
	for _, e := range s.of(probe) {
		if e.Type == model.EventFinding {
			out = append(out, *e.Finding)
		}
	}
	return out
}

func onlyFinding(t *testing.T, s *events, probe string) model.Finding {
	t.Helper()
	fs := s.findings(probe)
	if len(fs) != 1 {
		t.Fatalf("probe %s recorded %d findings, want 1: %+v", probe, len(fs), fs)
	}
	if err := fs[0].Validate(); err != nil {
		t.Errorf("finding does not validate: %v", err)
	}
	return fs[0]
}

func TestRunRespectsPoolBound(t *testing.T) {
	var active, peak atomic.Int32
	var ps []Probe
	for i := range 9 {
		ps = append(ps, fakeProbe{id: fmt.Sprintf("p%d", i), run: func(ctx context.Context, _ *Env, rec Recorder) error {
			n := active.Add(1)
			for {
				old := peak.Load()
				if n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			time.Sleep(30 * time.Millisecond)
			active.Add(-1)
			rec.Finding(model.Finding{ID: "ok", Status: model.StatusPass, Title: "ok"})
			return nil
		}})
	}
	sink := &events{}
	Run(context.Background(), ps, &Env{}, sink, RunnerOptions{Parallel: 3})
	if got := peak.Load(); got > 3 || got < 2 {
		t.Errorf("peak concurrency = %d, want 2..3 with Parallel=3", got)
	}
	for _, p := range ps {
		if n := len(sink.findings(p.Info().ID)); n != 1 {
			t.Errorf("probe %s: %d findings, want 1", p.Info().ID, n)
		}
	}
}

func TestRunTimeoutNamesStage(t *testing.T) {
	p := fakeProbe{id: "slow", run: func(ctx context.Context, _ *Env, rec Recorder) error {
		rec.Stage("waiting for the test pod to start")
		<-ctx.Done()
		return fmt.Errorf("waiting for pod: %w", ctx.Err())
	}}
	sink := &events{}
	Run(context.Background(), []Probe{p}, &Env{}, sink, RunnerOptions{ProbeTimeout: 50 * time.Millisecond})
	f := onlyFinding(t, sink, "slow")
	if f.ID != FindingTimeout || f.Status != model.StatusError {
		t.Fatalf("finding = %s/%s, want %s/error", f.ID, f.Status, FindingTimeout)
	}
	if !strings.Contains(f.RootCause, "timed out while waiting for the test pod to start") {
		t.Errorf("root cause %q does not name the stage", f.RootCause)
	}
	if !strings.Contains(f.Fixes[0].Commands[0], "--probe-timeout") {
		t.Errorf("fix %q does not mention --probe-timeout", f.Fixes[0].Commands)
	}
}

func TestRunForbiddenNamesPermission(t *testing.T) {
	cases := []struct {
		name, msg               string
		gr                      schema.GroupResource
		wantCause, wantCanI, in string
	}{
		{
			name:      "namespaced",
			gr:        schema.GroupResource{Resource: "pods"},
			msg:       `User "alice" cannot list resource "pods" in API group "" in the namespace "kube-system"`,
			wantCause: "denied permission to list pods in namespace kube-system while listing pods",
			wantCanI:  "kubectl auth can-i list pods -n kube-system",
			in:        `resources: ["pods"]`,
		},
		{
			name:      "cluster scope with group and subresource",
			gr:        schema.GroupResource{Group: "networking.k8s.io", Resource: "networkpolicies"},
			msg:       `User "system:serviceaccount:ci:bot" cannot get resource "networkpolicies/status" in API group "networking.k8s.io" at the cluster scope`,
			wantCause: "denied permission to get networkpolicies.networking.k8s.io/status at cluster scope",
			wantCanI:  "kubectl auth can-i get networkpolicies.networking.k8s.io --subresource=status --all-namespaces",
			in:        `apiGroups: ["networking.k8s.io"]`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fakeProbe{id: "rbac", run: func(ctx context.Context, _ *Env, rec Recorder) error {
				rec.Stage("listing pods")
				return fmt.Errorf("list pods: %w", apierrors.NewForbidden(tc.gr, "", errors.New(tc.msg)))
			}}
			sink := &events{}
			Run(context.Background(), []Probe{p}, &Env{}, sink, RunnerOptions{})
			f := onlyFinding(t, sink, "rbac")
			if f.ID != FindingForbidden {
				t.Fatalf("finding ID = %s, want %s", f.ID, FindingForbidden)
			}
			if !strings.Contains(f.RootCause, tc.wantCause) {
				t.Errorf("root cause %q lacks %q", f.RootCause, tc.wantCause)
			}
			if !slices.Contains(f.Fixes[0].Commands, tc.wantCanI) {
				t.Errorf("commands %q lack %q", f.Fixes[0].Commands, tc.wantCanI)
			}
			if !strings.Contains(f.RootCause, "bind the ClusterRole netsleuth-view") {
				t.Errorf("root cause %q does not name netsleuth-view, the role that grants a read", f.RootCause)
			}
			if !slices.ContainsFunc(f.Fixes[0].Commands, func(c string) bool { return strings.Contains(c, "--clusterrole=netsleuth-view") }) {
				t.Errorf("commands %q do not bind netsleuth-view", f.Fixes[0].Commands)
			}
			m := f.Fixes[0].Manifest
			if !strings.Contains(m, "kind: ClusterRole") || !strings.Contains(m, tc.in) || !strings.Contains(m, `resources: ["nodes"]`) {
				t.Errorf("manifest lacks the rule:\n%s", m)
			}
		})
	}
}

func TestRunRecoversPanic(t *testing.T) {
	p := fakeProbe{id: "boom", run: func(ctx context.Context, _ *Env, rec Recorder) error {
		rec.Stage("parsing configz")
		var m map[string]int
		m["x"] = 1 // nil map write panics
		return nil
	}}
	sink := &events{}
	Run(context.Background(), []Probe{p}, &Env{}, sink, RunnerOptions{})
	f := onlyFinding(t, sink, "boom")
	if f.ID != FindingPanic || !strings.Contains(f.RootCause, "panicked while parsing configz") {
		t.Errorf("finding = %s %q, want a panic finding naming the stage", f.ID, f.RootCause)
	}
}

func TestCleanupRunsOnCancelWithLiveContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var order []string
	var cleanupErr error
	p := fakeProbe{id: "creator", run: func(pctx context.Context, _ *Env, rec Recorder) error {
		rec.Cleanup(func(cctx context.Context) error {
			order = append(order, "first")
			return nil
		})
		rec.Cleanup(func(cctx context.Context) error {
			order = append(order, "second")
			if _, ok := cctx.Deadline(); !ok {
				cleanupErr = errors.New("cleanup context has no deadline")
			} else if cctx.Err() != nil {
				cleanupErr = fmt.Errorf("cleanup context is already done: %w", cctx.Err())
			}
			return nil
		})
		rec.Stage("waiting for traffic")
		close(started)
		<-pctx.Done()
		return pctx.Err()
	}}
	go func() { <-started; cancel() }()
	sink := &events{}
	Run(ctx, []Probe{p}, &Env{}, sink, RunnerOptions{})
	if cleanupErr != nil {
		t.Error(cleanupErr)
	}
	if !slices.Equal(order, []string{"second", "first"}) {
		t.Errorf("cleanups ran in order %v, want LIFO [second first]", order)
	}
	f := onlyFinding(t, sink, "creator")
	if f.ID != FindingStopped || !strings.Contains(f.RootCause, "while waiting for traffic") {
		t.Errorf("finding = %s %q, want a stopped finding naming the stage", f.ID, f.RootCause)
	}
}

func TestFailedCleanupIsReported(t *testing.T) {
	p := fakeProbe{id: "leaky", run: func(ctx context.Context, _ *Env, rec Recorder) error {
		rec.Cleanup(func(context.Context) error { return errors.New("delete pod x: conflict") })
		rec.Finding(model.Finding{ID: "ok", Status: model.StatusPass, Title: "ok"})
		return nil
	}}
	sink := &events{}
	Run(context.Background(), []Probe{p}, &Env{}, sink, RunnerOptions{})
	fs := sink.findings("leaky")
	if len(fs) != 2 || fs[1].ID != FindingCleanup || fs[1].Status != model.StatusWarn {
		t.Fatalf("findings = %+v, want pass then a cleanup warning", fs)
	}
}

func TestEventOrderPerProbe(t *testing.T) {
	late := make(chan Recorder, 1)
	p := fakeProbe{id: "order", run: func(ctx context.Context, _ *Env, rec Recorder) error {
		rec.Stage("one")
		rec.Finding(model.Finding{ID: "a", Status: model.StatusPass, Title: "a"})
		rec.Stage("two")
		rec.Finding(model.Finding{ID: "b", Status: model.StatusWarn, Title: "b", RootCause: "x", Fixes: []model.Fix{{Description: "y"}}})
		late <- rec
		return nil
	}}
	sink := &events{}
	env := &Env{}
	Run(context.Background(), []Probe{p}, env, sink, RunnerOptions{})
	(<-late).Finding(model.Finding{ID: "late", Status: model.StatusFail, Title: "late"}) // after finish: dropped
	var got []string
	for _, e := range sink.of("order") {
		s := string(e.Type)
		if e.Message != "" {
			s += ":" + e.Message
		}
		if e.Finding != nil {
			s += ":" + e.Finding.ID
			if e.Finding.Probe != "order" {
				t.Errorf("finding %s has probe %q, want the runner to fill in %q", e.Finding.ID, e.Finding.Probe, "order")
			}
		}
		if e.RunID == "" || e.RunID != env.RunID || e.Time.IsZero() {
			t.Errorf("event %s lacks run ID %q or time", s, env.RunID)
		}
		got = append(got, s)
	}
	want := []string{"started", "progress:one", "finding:a", "progress:two", "finding:b", "finished"}
	if !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func TestCollectorBuildsValidReport(t *testing.T) {
	ps := []Probe{
		fakeProbe{id: "b", run: func(ctx context.Context, _ *Env, rec Recorder) error {
			time.Sleep(20 * time.Millisecond)
			rec.Finding(model.Finding{ID: "b1", Status: model.StatusPass, Title: "b1"})
			return nil
		}},
		fakeProbe{id: "a", run: func(ctx context.Context, _ *Env, rec Recorder) error {
			return errors.New("exec into pod: EOF")
		}},
	}
	c := NewCollector(model.Cluster{Context: "kind"}, time.Now(), "b", "a")
	Run(context.Background(), ps, &Env{}, c, RunnerOptions{Parallel: 2})
	r := c.Report(time.Now())
	if err := r.Validate(); err != nil {
		t.Fatalf("report does not validate: %v", err)
	}
	if len(r.Findings) != 2 || r.Findings[0].Probe != "b" || r.Findings[1].ID != FindingError {
		t.Errorf("findings = %+v, want b's pass then a's error", r.Findings)
	}
	if !r.Failing() || r.Summary.Error != 1 || r.Summary.Pass != 1 {
		t.Errorf("summary = %+v", r.Summary)
	}
}

func TestNewRunIDIsShortHex(t *testing.T) {
	a, b := NewRunID(), NewRunID()
	if len(a) != 8 || strings.Trim(a, "0123456789abcdef") != "" || a == b {
		t.Errorf("run IDs %q, %q: want two different 8-char hex strings", a, b)
	}
}
