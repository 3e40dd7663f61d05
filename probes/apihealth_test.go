package probes

import (
	"context"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netsleuth/netsleuth/model"
)

var refusedErr = &url.Error{Op: "Get", URL: "https://10.0.0.1:6443/api/v1/pods", Err: &net.OpError{Op: "dial", Net: "tcp",
	Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}}

// clock is a settable time for APIHealth, in seconds from an origin.
type clock struct{ t time.Time }

func (c *clock) now() time.Time     { return c.t }
func (c *clock) at(s int) time.Time { return time.Unix(1000+int64(s), 0) }
func (c *clock) set(s int)          { c.t = c.at(s) }

func TestAPIHealthOutages(t *testing.T) {
	c := &clock{}
	h := &APIHealth{now: c.now}
	c.set(0)
	h.Observe(nil)
	c.set(10)
	h.Observe(refusedErr) // down at 10
	c.set(12)
	h.Observe(refusedErr)
	h.Observe(context.Canceled) // says nothing
	c.set(20)
	h.Observe(nil) // back at 20
	for _, w := range []struct {
		from, to int
		want     bool
	}{
		{0, 9, false},   // before it
		{0, 11, true},   // into it
		{12, 15, true},  // inside it
		{25, 40, true},  // within APICatchUp after it
		{51, 60, false}, // after the catch-up
	} {
		if _, got := h.During(c.at(w.from), c.at(w.to)); got != w.want {
			t.Errorf("window %d–%d: during=%v, want %v", w.from, w.to, got, w.want)
		}
	}
	o, _ := h.During(c.at(0), c.at(60))
	if o.From != c.at(10) || o.To != c.at(20) {
		t.Errorf("outage %v–%v, want 10–20", o.From, o.To)
	}
	c.set(70)
	h.Observe(refusedErr) // down again, still down
	if o, ok := h.During(c.at(100), c.at(200)); !ok || !o.To.IsZero() {
		t.Errorf("an outage still going on: %+v %v", o, ok)
	}
	var nilHealth *APIHealth
	nilHealth.Observe(refusedErr)
	if _, ok := nilHealth.During(c.at(0), c.at(1)); ok {
		t.Error("a run without a recorder saw an outage")
	}
}

// A probe that found something failing while the API server was away gets
// the outage as its root cause; one that passed, or that blamed the API
// server itself, gets nothing more.
func TestRunnerLinksFailuresToAPIOutage(t *testing.T) {
	h := NewAPIHealth()
	h.Observe(refusedErr)
	time.Sleep(time.Millisecond)
	h.Observe(nil)
	fail := model.Finding{ID: "svc.dropped", Status: model.StatusFail, Title: "Service fails", RootCause: "a FORWARD drop"}
	pass := model.Finding{ID: "svc.ok", Status: model.StatusPass, Title: "Service works"}
	ps := []Probe{
		fakeProbe{id: "failing", run: func(_ context.Context, _ *Env, rec Recorder) error { rec.Finding(fail); rec.Finding(pass); return nil }},
		fakeProbe{id: "passing", run: func(_ context.Context, _ *Env, rec Recorder) error { rec.Finding(pass); return nil }},
		fakeProbe{id: "erred", run: func(context.Context, *Env, Recorder) error { return refusedErr }},
	}
	s := Start(context.Background(), ps, &Env{API: h}, SessionOptions{})
	s.Wait()
	r := s.Report()
	_ = s.Close()
	var outage model.Finding
	for _, f := range r.Findings {
		if isOutage(f) {
			if outage.Key != "" {
				t.Errorf("the outage is in the report twice: %s and %s", outage.Key, f.Key)
			}
			outage = f
		}
	}
	if outage.Probe != "failing" || outage.Status != model.StatusError || !strings.Contains(outage.Title, "API server stopped answering mid-run") {
		t.Fatalf("no outage finding for the failing probe: %+v", r.Findings)
	}
	for _, f := range r.Findings {
		switch {
		case f.ID == "svc.dropped" && (f.CausedBy != outage.Key || !strings.Contains(f.RootCause, "catching up") && !strings.Contains(f.RootCause, "client-go")):
			t.Errorf("the failing finding is not a symptom of the outage: %+v", f)
		case f.ID == "svc.ok" && f.CausedBy != "":
			t.Errorf("a passing finding was linked: %+v", f)
		case f.Probe == "erred" && f.ID != FindingAPIUnreachable:
			t.Errorf("the probe that met the outage itself: %+v", f)
		case f.Probe == "erred" && isOutage(f):
			t.Errorf("the probe that blamed the API server got a second outage finding: %+v", f)
		}
	}
	if r.Summary.RootCauses != 2 || r.Summary.Symptoms != 1 {
		t.Errorf("summary %+v, want 2 root causes (the outage, the erred probe's) and 1 symptom", r.Summary)
	}
}

func TestNoOutageNoLink(t *testing.T) {
	fs := []model.Finding{{ID: "svc.dropped", Status: model.StatusFail}, {ID: FindingAPIUnreachable, Status: model.StatusError}}
	out := linkOutage(fs)
	for _, f := range out {
		if f.CausedBy != "" {
			t.Errorf("linked without an outage finding: %+v", f)
		}
	}
}
