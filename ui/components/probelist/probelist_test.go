package probelist

import (
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
	"github.com/netsleuth/netsleuth/ui/state"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// midRun is the demo half way: external done with its failures, dns
// running, the rest waiting.
func midRun(t *testing.T) *state.Store {
	first, _ := uitest.Demo(t)
	s := state.New(uitest.Lab, uitest.T0, "c0ffee12", first)
	uitest.Play(s, "c0ffee12", "external", uitest.Findings(t, "snat"), uitest.T0, 8500*time.Millisecond)
	uitest.Play(s, "c0ffee12", "runtime", uitest.Findings(t, "healthy"), uitest.T0, 200*time.Millisecond)
	s.Apply(model.Event{RunID: "c0ffee12", Probe: "dns", Type: model.EventStarted, Time: uitest.T0.Add(time.Second)})
	s.Apply(model.Event{RunID: "c0ffee12", Probe: "dns", Type: model.EventProgress, Message: "querying every hop from a pod on each node"})
	return s
}

func view(m *Model, s *state.Store, th *theme.Theme, w, h int) string {
	m.Rebuild(s, uitest.T0.Add(9*time.Second), "⠋", th)
	m.List.SetHeight(h)
	return m.List.View(th, w)
}

func TestViewMidRun(t *testing.T) {
	m := New()
	golden.RequireEqual(t, view(&m, midRun(t), theme.New(false, true), 60, 20))
}

func TestViewMidRunColor(t *testing.T) {
	m := New()
	golden.RequireEqual(t, view(&m, midRun(t), theme.New(true, true), 80, 12))
}

func TestFailingOnlyAndFilter(t *testing.T) {
	s := midRun(t)
	th := theme.New(false, true)
	m := New()
	m.FailingOnly = true
	out := view(&m, s, th, 60, 6)
	if m.Shown() != 1 {
		t.Errorf("failing only shows %d probes, want external alone:\n%s", m.Shown(), out)
	}
	m.FailingOnly, m.Filter = false, "masquerade"
	golden.RequireEqual(t, view(&m, s, th, 60, 6))
	// At 50 cells the line is cut to the width, and what is cut is the
	// filter's tail (the tab bar shows it whole), never the way out.
	m.Filter = "nothing like this"
	if out := view(&m, s, th, 50, 2); out != "  esc clears the filter; no finding matches \"noth…\n" {
		t.Errorf("empty filter view = %q", out)
	}
}

func TestToggleFoldsAndSelectsTheProbe(t *testing.T) {
	s, th, now := midRun(t), theme.New(false, true), uitest.T0
	m := New()
	m.Rebuild(s, now, "", th)
	m.List.SetHeight(30)
	m.List.Move(1) // the first finding of external
	if sel, _ := m.Selected(); sel.Finding == "" || sel.Probe != "external" {
		t.Fatalf("selection = %+v, want a finding of external", sel)
	}
	m.Toggle(s, true, now, "", th)
	if sel, _ := m.Selected(); sel.Finding != "" || sel.Probe != "external" {
		t.Errorf("after folding, selection = %+v, want the external row", sel)
	}
	m.List.Move(1)
	if sel, _ := m.Selected(); sel.Probe != "ipmasq" {
		t.Errorf("below a folded external = %+v, want ipmasq", sel)
	}
}
