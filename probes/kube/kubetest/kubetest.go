// Package kubetest holds test helpers shared by the probes' unit tests: a
// recorder that keeps what a probe reports, and contract checks on findings.
package kubetest

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/netsleuth/netsleuth/model"
)

// Recorder is a probes.Recorder that keeps stages, findings and cleanups.
type Recorder struct {
	mu       sync.Mutex
	Stages   []string
	Findings []model.Finding
	Cleanups []func(ctx context.Context) error
}

// Stage records msg.
func (r *Recorder) Stage(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Stages = append(r.Stages, msg)
}

// Finding records f.
func (r *Recorder) Finding(f model.Finding) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Findings = append(r.Findings, f)
}

// Cleanup records fn.
func (r *Recorder) Cleanup(fn func(ctx context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Cleanups = append(r.Cleanups, fn)
}

// CheckContract fails t for any finding that breaks the report contract or
// this project's rules: non-pass findings need a root cause, a fix with
// content, evidence and references; every finding needs a subject.
func CheckContract(t *testing.T, fs []model.Finding) {
	t.Helper()
	for _, f := range fs {
		if f.Probe == "" {
			f.Probe = "shared" // the runner fills in the recording probe
		}
		if err := f.Validate(); err != nil {
			t.Errorf("%v", err)
		}
		if f.Subject == nil {
			t.Errorf("finding %s %q has no subject", f.ID, f.Title)
		}
		if len(f.Evidence) == 0 {
			t.Errorf("finding %s %q has no evidence", f.ID, f.Title)
		}
		if f.Status == model.StatusPass || f.Status == model.StatusSkip {
			continue
		}
		if len(f.References) == 0 {
			t.Errorf("finding %s %q has no references", f.ID, f.Title)
		}
		if !strings.HasSuffix(f.RootCause, ".") {
			t.Errorf("finding %s root cause is not one sentence ending in a period: %q", f.ID, f.RootCause)
		}
		for _, fx := range f.Fixes {
			if fx.Description == "" || len(fx.Commands) == 0 && fx.Manifest == "" {
				t.Errorf("finding %s has an empty fix %+v", f.ID, fx)
			}
		}
	}
}

// Count returns how many findings have id and status.
func Count(fs []model.Finding, id string, st model.Status) int {
	n := 0
	for _, f := range fs {
		if f.ID == id && f.Status == st {
			n++
		}
	}
	return n
}

// Find returns the first finding with id whose subject name is name.
func Find(fs []model.Finding, id, name string) (model.Finding, bool) {
	for _, f := range fs {
		if f.ID == id && f.Subject != nil && f.Subject.Name == name {
			return f, true
		}
	}
	return model.Finding{}, false
}

// Expect checks an analysis result: the report contract, exactly n findings,
// and at least one finding of each wanted ID with its status.
func Expect(t *testing.T, got []model.Finding, n int, want map[string]model.Status) {
	t.Helper()
	CheckContract(t, got)
	if len(got) != n {
		t.Errorf("got %d findings, want %d: %+v", len(got), n, got)
	}
	for id, st := range want {
		if Count(got, id, st) == 0 {
			t.Errorf("missing %s %s in %+v", id, st, got)
		}
	}
}
