package probes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// counting is a probe that records one finding per run, with the run's
// target in its title, and counts its runs.
func counting(id string, runs *atomic.Int32) Probe {
	return fakeProbe{id: id, run: func(ctx context.Context, env *Env, rec Recorder) error {
		n := runs.Add(1)
		title := fmt.Sprintf("run %d", n)
		if len(env.Options.Targets) > 0 {
			title += " to " + env.Options.Targets[0]
		}
		rec.Finding(model.Finding{ID: id + ".ok", Status: model.StatusPass, Title: title})
		return nil
	}}
}

// blocking is a probe that waits until it is cancelled, then reports the
// cleanup it registered.
func blocking(id string, cleaned chan<- string) Probe {
	return fakeProbe{id: id, run: func(ctx context.Context, env *Env, rec Recorder) error {
		rec.Cleanup(func(context.Context) error { cleaned <- id; return nil })
		rec.Stage("waiting")
		<-ctx.Done()
		return context.Cause(ctx)
	}}
}

func drain(t *testing.T, ch <-chan model.Event) []model.Event {
	t.Helper()
	var out []model.Event
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, e)
		case <-timeout:
			t.Fatal("the events channel was not closed")
		}
	}
}

// TestSessionReportMatchesCollector: a session's first run reports what
// Run and a Collector report for the same probes, so check is unchanged.
func TestSessionReportMatchesCollector(t *testing.T) {
	mk := func() []Probe {
		var a, b atomic.Int32
		shared := model.Finding{ID: "node.fact", Status: model.StatusFail, Title: "fact", RootCause: "r", Fixes: []model.Fix{{Description: "f"}},
			Subject: &model.Subject{Kind: "Node", Name: "n1"}}.WithKey("")
		return []Probe{
			counting("one", &a),
			fakeProbe{id: "two", run: func(ctx context.Context, env *Env, rec Recorder) error {
				Cite(rec, shared, model.Finding{ID: "two.symptom", Status: model.StatusFail, Title: "symptom"})
				return nil
			}},
			counting("three", &b),
		}
	}
	col := NewCollector(model.Cluster{Context: "c"}, time.Now(), "one", "two", "three")
	Run(context.Background(), mk(), &Env{RunID: "r1"}, col, RunnerOptions{Parallel: 2})
	want := col.Report(time.Now())

	s := Start(context.Background(), mk(), &Env{RunID: "r1"}, SessionOptions{Cluster: model.Cluster{Context: "c"}, Runner: RunnerOptions{Parallel: 2}})
	s.Wait()
	got := s.Report()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got.Findings, want.Findings, func(a, b model.Finding) bool { return a.Key == b.Key && a.CausedBy == b.CausedBy }) ||
		got.Summary != want.Summary || got.Cluster != want.Cluster {
		t.Errorf("session report %+v\nwant %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Error(err)
	}
}

func TestSessionRerunTagsEventsAndReplacesFindings(t *testing.T) {
	var runs atomic.Int32
	s := Start(context.Background(), []Probe{counting("p", &runs)}, &Env{RunID: "first"}, SessionOptions{})
	s.Wait()
	o := s.Options()
	o.Targets = []string{"192.168.2.10:80"}
	s.SetOptions(o)
	id, err := s.Rerun("p")
	if err != nil || id == "" || id == "first" {
		t.Fatalf("Rerun = %q, %v; want a new run ID", id, err)
	}
	s.Wait()
	r := s.Report()
	if len(r.Findings) != 1 || r.Findings[0].Title != "run 2 to 192.168.2.10:80" {
		t.Errorf("findings after the rerun = %+v, want only run 2's, with the new target", r.Findings)
	}
	if s.ID() != "first" {
		t.Errorf("session ID = %q, want the first run's", s.ID())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	byRun := map[string]int{}
	for _, e := range drain(t, s.Events()) {
		byRun[e.RunID]++
	}
	// Events left unread at Close are dropped, so only check the tags seen.
	for run := range byRun {
		if run != "first" && run != id {
			t.Errorf("event with run ID %q, want %q or %q", run, "first", id)
		}
	}
}

func TestSessionEventsCarryEachRunsID(t *testing.T) {
	var runs atomic.Int32
	s := Start(context.Background(), []Probe{counting("p", &runs)}, &Env{RunID: "first"}, SessionOptions{})
	var got []model.Event
	for len(got) < 3 {
		got = append(got, <-s.Events())
	}
	id, _ := s.Rerun()
	for len(got) < 6 {
		got = append(got, <-s.Events())
	}
	_ = s.Close()
	for i, e := range got {
		want := "first"
		if i >= 3 {
			want = id
		}
		if e.RunID != want {
			t.Errorf("event %d (%s %s) has run ID %q, want %q", i, e.Probe, e.Type, e.RunID, want)
		}
	}
	if got[0].Type != model.EventStarted || got[2].Type != model.EventFinished {
		t.Errorf("first run's events = %v, want started, finding, finished", got[:3])
	}
}

// TestSessionRerunSupersedesRunningProbe: rerunning a probe that still runs
// stops the old run of it, which cleans up before the new one starts.
func TestSessionRerunSupersedesRunningProbe(t *testing.T) {
	cleaned := make(chan string, 4)
	var starts atomic.Int32
	p := fakeProbe{id: "p", run: func(ctx context.Context, env *Env, rec Recorder) error {
		if starts.Add(1) == 2 {
			select {
			case <-cleaned:
			default:
				t.Error("the new run started before the old one cleaned up")
			}
			rec.Finding(model.Finding{ID: "p.ok", Status: model.StatusPass, Title: "second"})
			return nil
		}
		return blocking("p", cleaned).Run(ctx, env, rec)
	}}
	s := Start(context.Background(), []Probe{p}, &Env{RunID: "r"}, SessionOptions{})
	for e := range s.Events() {
		if e.Type == model.EventProgress {
			break
		}
	}
	if _, err := s.Rerun("p"); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	r := s.Report()
	if len(r.Findings) != 1 || r.Findings[0].Title != "second" {
		t.Errorf("report = %+v, want only the second run's finding", r.Findings)
	}
	_ = s.Close()
}

func TestSessionRerunErrors(t *testing.T) {
	var runs atomic.Int32
	s := Start(context.Background(), []Probe{counting("p", &runs)}, &Env{}, SessionOptions{Extra: []Probe{counting("extra", &runs)}})
	if s.ID() == "" {
		t.Error("Start did not give the session an ID")
	}
	if _, err := s.Rerun("nope"); err == nil {
		t.Error("Rerun of an unknown probe did not fail")
	}
	if _, err := s.Rerun("extra"); err != nil {
		t.Errorf("Rerun of an extra probe: %v", err)
	}
	s.Wait()
	if r := s.Report(); len(r.Findings) != 2 || r.Findings[1].Probe != "extra" {
		t.Errorf("report = %+v, want p's then extra's finding", r.Findings)
	}
	_ = s.Close()
	if _, err := s.Rerun("p"); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("Rerun after Close = %v, want ErrSessionClosed", err)
	}
}

func TestSessionPoolBoundAcrossRuns(t *testing.T) {
	var active, peak atomic.Int32
	var ps []Probe
	for i := range 6 {
		ps = append(ps, fakeProbe{id: fmt.Sprintf("p%d", i), run: func(ctx context.Context, _ *Env, rec Recorder) error {
			n := active.Add(1)
			for old := peak.Load(); n > old && !peak.CompareAndSwap(old, n); old = peak.Load() {
			}
			time.Sleep(20 * time.Millisecond)
			active.Add(-1)
			return nil
		}})
	}
	s := Start(context.Background(), ps[:3], &Env{}, SessionOptions{Runner: RunnerOptions{Parallel: 2}, Extra: ps[3:]})
	if _, err := s.Rerun("p3", "p4", "p5"); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	_ = s.Close()
	if got := peak.Load(); got > 2 {
		t.Errorf("peak concurrency %d across two runs, want at most 2", got)
	}
}

// releasing is an Agents that records Close.
type releasing struct {
	Agents
	mu     sync.Mutex
	closed int
	err    error
}

func (r *releasing) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("no deadline")
	}
	r.closed++
	return r.err
}

func (r *releasing) Start(context.Context, AgentKind, []string) []Agent { return nil }
func (r *releasing) Exec(context.Context, Agent, ops.Request) (ops.Response, error) {
	return ops.Response{}, nil
}

// TestSessionCloseStopsCleansAndReleases: Close stops a running probe, runs
// its cleanup, deletes the agents once (on a live context, also when the
// caller's context is gone) and returns the deletion error every time.
func TestSessionCloseStopsCleansAndReleases(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cleaned := make(chan string, 1)
	agents := &releasing{err: errors.New("namespace stuck")}
	s := Start(ctx, []Probe{blocking("b", cleaned)}, &Env{Agents: agents}, SessionOptions{})
	for e := range s.Events() {
		if e.Type == model.EventProgress {
			break
		}
	}
	cancel()
	if err := s.Close(); err == nil || err.Error() != "namespace stuck" {
		t.Errorf("Close = %v, want the agents' error", err)
	}
	if err := s.Close(); err == nil {
		t.Error("a second Close forgot the error")
	}
	select {
	case <-cleaned:
	default:
		t.Error("the probe's cleanup did not run before Close returned")
	}
	if agents.closed != 1 {
		t.Errorf("agents closed %d times, want 1", agents.closed)
	}
	if r := s.Report(); len(r.Findings) != 1 || r.Findings[0].ID != FindingStopped {
		t.Errorf("report = %+v, want one stopped finding", r.Findings)
	}
	if s.Running() {
		t.Error("Running after Close")
	}
}

// TestSessionNobodyReading: a headless session never reads Events; the
// probes must not wait for a reader.
func TestSessionNobodyReading(t *testing.T) {
	var ps []Probe
	for i := range 3 {
		ps = append(ps, fakeProbe{id: fmt.Sprintf("p%d", i), run: func(ctx context.Context, _ *Env, rec Recorder) error {
			for range 200 {
				rec.Stage("busy")
			}
			return nil
		}})
	}
	seen := &events{}
	s := Start(context.Background(), ps, &Env{}, SessionOptions{Sink: seen})
	done := make(chan struct{})
	go func() { s.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the probes blocked on an unread events channel")
	}
	_ = s.Close()
	if n := len(seen.of("p1")); n != 202 {
		t.Errorf("the sink got %d events of p1, want 202", n)
	}
}

// TestSessionEachRunReadsTheClusterOnce: the first run's probes share the
// Env's snapshot; a rerun's probes share a new one, so a rerun after a fix
// does not read the cluster as it was.
func TestSessionEachRunReadsTheClusterOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]*kube.Snapshot{} // probe@run → snapshot
	snapOf := func(id string) Probe {
		return fakeProbe{id: id, run: func(ctx context.Context, env *Env, rec Recorder) error {
			mu.Lock()
			defer mu.Unlock()
			seen[fmt.Sprintf("%s@%d", id, len(seen)/2)] = env.Snap()
			return nil
		}}
	}
	first := kube.NewSnapshot(nil, "")
	s := Start(context.Background(), []Probe{snapOf("a"), snapOf("b")}, &Env{RunID: "r1", Cache: first}, SessionOptions{Runner: RunnerOptions{Parallel: 1}})
	s.Wait()
	if _, err := s.Rerun(); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	defer s.Close()
	mu.Lock()
	defer mu.Unlock()
	if seen["a@0"] != first || seen["b@0"] != first {
		t.Errorf("the first run did not read through the Env's snapshot: %v", seen)
	}
	if seen["a@1"] == nil || seen["a@1"] == first || seen["a@1"] != seen["b@1"] {
		t.Errorf("the rerun's probes should share one new snapshot: %v", seen)
	}
}
