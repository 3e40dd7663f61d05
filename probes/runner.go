package probes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/netsleuth/netsleuth/model"
)

// Defaults for RunnerOptions fields left at zero.
const (
	DefaultParallel       = 4
	DefaultCleanupTimeout = 30 * time.Second
)

// RunnerOptions bound a run.
type RunnerOptions struct {
	// Parallel is how many probes run at once; values below 1 mean DefaultParallel.
	Parallel int
	// ProbeTimeout bounds each probe; zero means no limit beyond the run's context.
	ProbeTimeout time.Duration
	// CleanupTimeout bounds each cleanup function; zero means DefaultCleanupTimeout.
	CleanupTimeout time.Duration
	// Invocation is how the user ran netsleuth ("kubectl netsleuth" as a
	// kubectl plugin); fix commands that run netsleuth say it that way.
	// Empty means "netsleuth".
	Invocation string
}

// ProbeTimeoutError is the cause of a probe's context when ProbeTimeout expires.
type ProbeTimeoutError struct {
	Probe   string
	Timeout time.Duration
}

func (e *ProbeTimeoutError) Error() string {
	return fmt.Sprintf("probe %s exceeded --probe-timeout=%s", e.Probe, e.Timeout)
}

// Unwrap lets errors.Is(err, context.DeadlineExceeded) hold.
func (e *ProbeTimeoutError) Unwrap() error { return context.DeadlineExceeded }

// NewRunID returns a short random hex identifier for one run.
func NewRunID() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("%08x", uint32(time.Now().UnixNano()))
	}
	return hex.EncodeToString(b[:])
}

// Run runs probes on a pool of opts.Parallel workers and emits every probe's
// events to sink: started, progress and finding events, then finished. A probe
// that fails, times out or panics yields an error finding; cleanups registered
// by a probe run after it on a fresh context, also when ctx is cancelled. Run
// returns when every probe and every cleanup has ended. If env.RunID is empty
// Run sets it.
func Run(ctx context.Context, ps []Probe, env *Env, sink model.Sink, opts RunnerOptions) {
	if env.RunID == "" {
		env.RunID = NewRunID()
	}
	if opts.Parallel < 1 {
		opts.Parallel = DefaultParallel
	}
	if opts.CleanupTimeout <= 0 {
		opts.CleanupTimeout = DefaultCleanupTimeout
	}
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	for _, p := range ps {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			runOne(ctx, p, env, sink, opts)
		})
	}
	wg.Wait()
}

// runOne runs one probe from its started event to its finished event.
func runOne(ctx context.Context, p Probe, env *Env, sink model.Sink, opts RunnerOptions) {
	info := p.Info()
	rec := &recorder{runID: env.RunID, probe: info.ID, sink: sink, stage: "starting", self: opts.Invocation}
	rec.emit(model.Event{Type: model.EventStarted})
	defer func() {
		rec.runCleanups(ctx, opts.CleanupTimeout)
		rec.finish()
	}()
	if err := context.Cause(ctx); err != nil {
		rec.Finding(stoppedFinding(info, "waiting for a free worker", err))
		return
	}
	pctx, cancel := ctx, context.CancelFunc(func() {})
	if opts.ProbeTimeout > 0 {
		pctx, cancel = context.WithTimeoutCause(ctx, opts.ProbeTimeout,
			&ProbeTimeoutError{Probe: info.ID, Timeout: opts.ProbeTimeout})
	}
	defer cancel()
	start := time.Now()
	if err := safeRun(pctx, p, env, rec); err != nil {
		rec.Finding(errorFinding(info, rec.lastStage(), err, context.Cause(pctx)))
	}
	if o, ok := env.API.During(start, time.Now()); ok && rec.failedUnexplained() {
		rec.Finding(outageFinding(info, o))
	}
}

// panicError carries a recovered panic and its stack.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// safeRun calls p.Run and turns a panic into a *panicError.
func safeRun(ctx context.Context, p Probe, env *Env, rec Recorder) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return p.Run(ctx, env, rec)
}

// recorder is the Recorder the runner hands each probe. It is safe for
// concurrent use and drops anything recorded after the probe finished.
type recorder struct {
	runID, probe string
	sink         model.Sink
	self         string // the invocation fix commands use for netsleuth

	mu       sync.Mutex
	stage    string
	cleanups []func(context.Context) error
	done     bool
	failing  bool // a failing finding was recorded
	api      bool // a finding said the API server did not answer
}

// failedUnexplained reports whether the probe recorded a failing finding
// and none that blames the API server.
func (r *recorder) failedUnexplained() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failing && !r.api
}

func (r *recorder) emit(e model.Event) {
	e.RunID, e.Probe, e.Time = r.runID, r.probe, time.Now()
	r.sink.Emit(e)
}

// Stage records the current stage and emits a progress event.
func (r *recorder) Stage(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.stage = model.Redact(msg)
	r.emit(model.Event{Type: model.EventProgress, Message: r.stage})
}

// Finding fills in the probe ID, redacts secrets from the finding's text
// (model.Finding.Redacted) and emits a finding event. Every report and the
// TUI get their findings from here, so none prints a secret a probe quoted.
func (r *recorder) Finding(f model.Finding) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	f.Probe = r.probe
	r.failing = r.failing || f.Status.Failing()
	r.api = r.api || strings.HasSuffix(f.ID, ".api-unreachable")
	f.Fixes = Invoked(f.Fixes, r.self)
	f = f.Redacted()
	r.emit(model.Event{Type: model.EventFinding, Finding: &f})
}

// Self is the word fix commands start with to run netsleuth itself.
const Self = "netsleuth"

// Invoked rewrites fix commands that run netsleuth ("netsleuth check ...")
// into the invocation the user typed, e.g. "kubectl netsleuth check ...".
// It returns fixes unchanged when self is "" or "netsleuth".
func Invoked(fixes []model.Fix, self string) []model.Fix {
	if self == "" || self == Self {
		return fixes
	}
	out := make([]model.Fix, len(fixes))
	for i, fx := range fixes {
		out[i] = fx
		out[i].Commands = make([]string, len(fx.Commands))
		for j, c := range fx.Commands {
			if rest, ok := strings.CutPrefix(c, Self+" "); ok {
				c = self + " " + rest
			}
			out[i].Commands[j] = c
		}
	}
	return out
}

// Cite records a shared diagnosis and the probe's own findings that it
// causes: each symptom links to the cause and carries its root cause and
// fixes. A cause recorded by several probes is one finding in the report.
func Cite(rec Recorder, cause model.Finding, symptoms ...model.Finding) {
	if cause.Key == "" {
		cause = cause.WithKey("")
	}
	rec.Finding(cause)
	for _, s := range symptoms {
		rec.Finding(s.Symptom(cause))
	}
}

// Cleanup registers fn; cleanups run last-in first-out.
func (r *recorder) Cleanup(fn func(ctx context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, fn)
}

func (r *recorder) lastStage() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stage
}

// runCleanups runs the registered cleanups in reverse order, each on a context
// that survives the cancellation of parent and has its own deadline; one the
// API server did not answer is tried again within it. A failed cleanup
// becomes a warn finding so leftovers are never silent.
func (r *recorder) runCleanups(parent context.Context, timeout time.Duration) {
	r.mu.Lock()
	fns := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	base := context.WithoutCancel(parent)
	for i := len(fns) - 1; i >= 0; i-- {
		ctx, cancel := context.WithTimeout(base, timeout)
		err := WhileUnreachable(ctx, func() error { return safeCleanup(ctx, fns[i]) })
		cancel()
		if err != nil {
			r.Finding(cleanupFinding(r.probe, r.runID, err))
		}
	}
}

func safeCleanup(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return fn(ctx)
}

// finish emits the finished event and closes the recorder.
func (r *recorder) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	r.emit(model.Event{Type: model.EventFinished})
}
