package probes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// DefaultReleaseTimeout bounds the deletion of a session's agents.
const DefaultReleaseTimeout = 60 * time.Second

// apiPatience is how long a session's cleanups, together, retry an API
// server that stopped answering (see WithAPIPatience): long enough for a
// restart, short enough that a run cut off from its cluster still ends soon
// and says to run `cleanup`.
const apiPatience = 30 * time.Second

// SessionOptions configure a Session.
type SessionOptions struct {
	Runner RunnerOptions
	// Cluster is the cluster Report names.
	Cluster model.Cluster
	// Sink, when set, gets every event as the probes emit it, from their
	// goroutines (headless progress lines).
	Sink model.Sink
	// Extra are probes the session knows but does not start: Rerun can run
	// them later (the TUI's external target and policy question).
	Extra []Probe
	// ReleaseTimeout bounds the deletion of the agents in Close; zero means
	// DefaultReleaseTimeout.
	ReleaseTimeout time.Duration
}

// Releaser is implemented by agents that delete what they created
// (probes/agent's Manager).
type Releaser interface {
	Close(ctx context.Context) error
}

// ErrSessionClosed is returned by Rerun after Close.
var ErrSessionClosed = errors.New("the session is closed")

// Session is one interactive or headless use of the probes: a first run of
// every selected probe, then any number of reruns of some of them, each with
// a run ID of its own, and one cleanup at the end. Headless `check` starts a
// session and waits for it; the TUI reruns probes in it.
//
// Env.RunID stays the session's ID across reruns (it names the agents and
// the objects the probes create); every event carries the ID of the run
// that produced it, so a consumer can drop the events of a superseded run.
// The first run reads the cluster through Env.Cache; each rerun gets a
// Snapshot of its own, shared by its probes.
type Session struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	base   Env
	opts   SessionOptions
	sem    chan struct{}
	known  map[string]Probe
	events *queue

	// agentsDone closes when the agents started as the run began are
	// started, or given up (Close waits for it before deleting them).
	agentsDone chan struct{}

	mu       sync.Mutex
	options  Options
	order    []string // report order: probe IDs as first run
	current  map[string]*instance
	running  int
	idle     chan struct{} // closed while nothing runs
	started  time.Time
	ended    time.Time
	closed   bool
	close    sync.Once
	closeErr error
	// cni is the cluster's CNI for the report, read once in the background
	// (cniDone closes when it is known).
	cni     string
	cniDone chan struct{}
}

// instance is one probe in one run.
type instance struct {
	runID    string
	probe    Probe
	ctx      context.Context
	cancel   context.CancelCauseFunc
	prev     *instance // the instance it supersedes, which must end first
	done     chan struct{}
	findings []model.Finding
}

// Start runs ps and returns at once; the run's ID is env.RunID (set when
// empty). Probes run on a pool of opts.Runner.Parallel workers shared by
// every run of the session, as Run would run them.
func Start(ctx context.Context, ps []Probe, env *Env, opts SessionOptions) *Session {
	if env.RunID == "" {
		env.RunID = NewRunID()
	}
	if opts.Runner.Parallel < 1 {
		opts.Runner.Parallel = DefaultParallel
	}
	if opts.ReleaseTimeout <= 0 {
		opts.ReleaseTimeout = DefaultReleaseTimeout
	}
	sctx, cancel := context.WithCancelCause(WithAPIPatience(ctx, apiPatience))
	s := &Session{ctx: sctx, cancel: cancel, base: *env, opts: opts, options: env.Options,
		sem: make(chan struct{}, opts.Runner.Parallel), known: map[string]Probe{},
		events: newQueue(), current: map[string]*instance{}, idle: make(chan struct{}), started: time.Now()}
	close(s.idle)
	s.cniDone = make(chan struct{})
	go s.discoverCNI(env)
	for _, p := range slices.Concat(ps, opts.Extra) {
		if _, dup := s.known[p.Info().ID]; !dup {
			s.known[p.Info().ID] = p
		}
	}
	if s.base.Cache == nil {
		s.base.Cache = kube.NewSnapshot(env.Kube, env.Namespace)
	}
	s.agentsDone = s.startAgents(slices.Concat(ps, opts.Extra), ps)
	s.launch(env.RunID, ps)
	return s
}

// startAgents plans the run's agents from what the probes declare (every
// kind the session's probes may start, reruns included: the namespace is
// created once, at the level they need) and starts, concurrently with the
// static probes, the kinds the first run's probes start on the whole node
// sample; their own Start calls then find those agents already starting.
// It announces them first, as a progress event of the session's own. The
// returned channel closes when that start has ended; a run without agents,
// or whose probes declare none, creates nothing.
func (s *Session) startAgents(known, first []Probe) chan struct{} {
	done := make(chan struct{})
	a := s.base.Agents
	kinds := AgentKinds(known, s.base.Options)
	early := SampleAgents(first, s.base.Options)
	if a == nil || len(kinds) == 0 {
		close(done)
		return done
	}
	if p, ok := a.(Planner); ok {
		p.Plan(kinds)
	}
	if len(early) == 0 {
		close(done)
		return done
	}
	env := s.base
	go func() {
		defer close(done)
		sample, err := env.AgentNodes(s.ctx)
		if err != nil || len(sample.Nodes) == 0 {
			return // the probes meet the same error and report it
		}
		order := slices.Sorted(maps.Keys(early))
		s.note(agentsNote(order, early, a.Namespace(), sample.Names()))
		FanOut(s.ctx, len(order), len(order), func(ctx context.Context, i int) (struct{}, error) {
			a.Start(ctx, order[i], sample.Names())
			return struct{}{}, nil
		})
	}()
	return done
}

// agentsNote announces the agents a run starts as it begins, privileged
// node agents by name.
func agentsNote(kinds []AgentKind, by map[AgentKind][]string, ns string, nodes []string) string {
	var what []string
	for _, k := range kinds {
		desc := string(k) + " agents"
		if k == AgentNode {
			desc = "privileged node agents (hostNetwork, host / mounted read-only)"
		}
		what = append(what, fmt.Sprintf("%s for %s", desc, strings.Join(by[k], ", ")))
	}
	return fmt.Sprintf("starting agents on %s node(s) (%s) in namespace %s as the run begins: %s",
		kube.Count(len(nodes)), kube.FirstNames(nodes), ns, strings.Join(what, "; "))
}

// note emits a progress event of the session's own (no probe).
func (s *Session) note(msg string) {
	e := model.Event{RunID: s.base.RunID, Type: model.EventProgress, Time: time.Now(), Message: msg}
	if s.opts.Sink != nil {
		s.opts.Sink.Emit(e)
	}
	s.events.push(e)
}

// ID is the session's ID, the first run's.
func (s *Session) ID() string { return s.base.RunID }

// Events delivers every event of every run in the order the probes emitted
// them, and the session's own progress events (Probe empty: the agents it
// starts as the run begins). It is buffered without bound, so probes never
// wait for a slow reader, and closed by Close.
func (s *Session) Events() <-chan model.Event { return s.events.out }

// Options are the probe inputs the next rerun gets.
func (s *Session) Options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneOptions(s.options)
}

// SetOptions changes the probe inputs of later reruns (a new --target or
// policy question); runs already started keep theirs.
func (s *Session) SetOptions(o Options) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.options = cloneOptions(o)
}

// Rerun runs the probes with the given IDs again (every probe of the
// session when none is given) as a new run, and returns its ID. A probe
// still running in an earlier run is stopped first, and the new run of it
// starts once the old one has cleaned up; the old run's events keep the old
// run ID.
func (s *Session) Rerun(ids ...string) (string, error) {
	if len(ids) == 0 {
		s.mu.Lock()
		ids = slices.Clone(s.order)
		s.mu.Unlock()
	}
	ps := make([]Probe, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		p, ok := s.known[id]
		if !ok {
			return "", fmt.Errorf("no probe %q in this session", id)
		}
		if !seen[id] {
			seen[id] = true
			ps = append(ps, p)
		}
	}
	runID := NewRunID()
	if !s.launch(runID, ps) {
		return "", ErrSessionClosed
	}
	return runID, nil
}

// launch registers one instance per probe, then starts them in order as
// workers become free. It returns false once the session is closed.
func (s *Session) launch(runID string, ps []Probe) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	if s.running == 0 {
		s.idle = make(chan struct{})
	}
	env := s.base
	env.Options = cloneOptions(s.options)
	if runID != s.base.RunID || env.Cache == nil {
		// A rerun reads the cluster afresh (the user may have mended it);
		// the probes of one run share one read.
		env.Cache = kube.NewSnapshot(env.Kube, env.Namespace)
	}
	insts := make([]*instance, len(ps))
	for i, p := range ps {
		id := p.Info().ID
		ctx, cancel := context.WithCancelCause(s.ctx)
		in := &instance{runID: runID, probe: p, ctx: ctx, cancel: cancel, prev: s.current[id], done: make(chan struct{})}
		if in.prev != nil {
			in.prev.cancel(fmt.Errorf("run %s of %s superseded it: %w", runID, id, context.Canceled))
		}
		if !slices.Contains(s.order, id) {
			s.order = append(s.order, id)
		}
		s.current[id] = in
		insts[i] = in
	}
	s.running += len(insts)
	s.mu.Unlock()
	go func() {
		for _, in := range insts {
			if in.prev != nil {
				<-in.prev.done
			}
			s.sem <- struct{}{}
			go s.run(in, env)
		}
	}()
	return true
}

// run runs one instance and releases its worker.
func (s *Session) run(in *instance, env Env) {
	defer s.finished(in)
	defer func() { <-s.sem }()
	sink := model.SinkFunc(func(e model.Event) { s.emit(in, e) })
	opts := s.opts.Runner
	opts.Parallel = 1
	Run(in.ctx, []Probe{in.probe}, &env, sink, opts)
}

func (s *Session) emit(in *instance, e model.Event) {
	e.RunID = in.runID
	if e.Type == model.EventFinding && e.Finding != nil {
		s.mu.Lock()
		in.findings = append(in.findings, *e.Finding)
		s.mu.Unlock()
	}
	if s.opts.Sink != nil {
		s.opts.Sink.Emit(e)
	}
	s.events.push(e)
}

func (s *Session) finished(in *instance) {
	in.cancel(nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	close(in.done)
	s.running--
	if s.running == 0 {
		s.ended = time.Now()
		close(s.idle)
	}
}

// Running reports whether some probe is still running or waiting to.
func (s *Session) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running > 0
}

// Wait blocks until every run started so far has ended, cleanups included.
func (s *Session) Wait() {
	s.mu.Lock()
	idle := s.idle
	s.mu.Unlock()
	<-idle
}

// Cancel stops every run; the probes' cleanups still run.
func (s *Session) Cancel() {
	s.cancel(fmt.Errorf("the session was cancelled: %w", context.Canceled))
}

// Close cancels what still runs, waits for every run and cleanup, deletes
// the agents (when the session's Agents are a Releaser), and closes Events.
// It returns the agents' deletion error; later calls return the same.
func (s *Session) Close() error {
	s.close.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.Cancel()
		s.Wait()
		<-s.agentsDone
		if r, ok := s.base.Agents.(Releaser); ok && r != nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), s.opts.ReleaseTimeout)
			s.closeErr = r.Close(ctx)
			cancel()
		}
		s.events.stop()
	})
	return s.closeErr
}

// Report is the report of the latest run of every probe so far: findings in
// the order the probes were first run, one finding per shared fact, and the
// duration up to the end of the last run (or now, while one runs).
func (s *Session) Report() *model.Report {
	s.mu.Lock()
	var all []model.Finding
	for _, id := range s.order {
		all = append(all, linkOutage(s.current[id].findings)...)
	}
	end := s.ended
	if s.running > 0 || end.IsZero() {
		end = time.Now()
	}
	started, done := s.started, s.running == 0 && !s.ended.IsZero()
	s.mu.Unlock()
	if done { // a finished run's report names the CNI, when it can be read in time
		select {
		case <-s.cniDone:
		case <-time.After(5 * time.Second):
		}
	}
	s.mu.Lock()
	cluster := s.opts.Cluster
	if cluster.CNI == "" {
		cluster.CNI = s.cni
	}
	s.mu.Unlock()
	r := model.NewReport(cluster, started)
	r.DurationMs = end.Sub(started).Milliseconds()
	for _, f := range Merge(all) {
		r.Add(f)
	}
	return r
}

// discoverCNI names the cluster's CNI for the report (kube.DiscoverCNI,
// through the run's snapshot, so the probes reuse what it read).
func (s *Session) discoverCNI(env *Env) {
	defer close(s.cniDone)
	if env.Kube == nil {
		return
	}
	c := kube.DiscoverCNI(s.ctx, env.Snap())
	if c.Name == "" {
		return // the report leaves out what the cluster does not show
	}
	s.mu.Lock()
	s.cni = c.String()
	s.mu.Unlock()
}

func cloneOptions(o Options) Options {
	o.Targets = slices.Clone(o.Targets)
	return o
}

// queue hands events from any number of producers to one reader without
// ever blocking a producer.
type queue struct {
	out    chan model.Event
	signal chan struct{}
	halt   chan struct{}

	mu      sync.Mutex
	pending []model.Event
	halted  bool
}

func newQueue() *queue {
	q := &queue{out: make(chan model.Event), signal: make(chan struct{}, 1), halt: make(chan struct{})}
	go q.forward()
	return q
}

func (q *queue) push(e model.Event) {
	q.mu.Lock()
	if !q.halted {
		q.pending = append(q.pending, e)
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// stop ends delivery: what was not read yet is dropped and out is closed.
func (q *queue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.halted {
		q.halted = true
		q.pending = nil
		close(q.halt)
	}
}

func (q *queue) forward() {
	defer close(q.out)
	for {
		q.mu.Lock()
		batch := q.pending
		q.pending = nil
		q.mu.Unlock()
		for _, e := range batch {
			select {
			case q.out <- e:
			case <-q.halt:
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-q.signal:
		case <-q.halt:
			return
		}
	}
}
