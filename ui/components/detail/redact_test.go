package detail

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/probetest"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
	"github.com/netsleuth/netsleuth/ui/state"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// TestDetailShowsNoSecret runs a probe that quotes secrets through the
// runner into the TUI's store, as the TUI does, and renders each of its
// findings whole in the detail pane, and the event log: no secret, and the
// marker where one was.
func TestDetailShowsNoSecret(t *testing.T) {
	s := state.New(uitest.Lab, uitest.T0, "r1", []model.ProbeInfo{probetest.Leaky{}.Info()})
	var mu sync.Mutex
	sink := model.SinkFunc(func(e model.Event) {
		mu.Lock()
		defer mu.Unlock()
		s.Apply(e)
	})
	probes.Run(context.Background(), []probes.Probe{probetest.Leaky{}}, &probes.Env{RunID: "r1"}, sink, probes.RunnerOptions{})
	if len(s.Report.Findings) != 2 {
		t.Fatalf("want 2 findings, got %+v", s.Report.Findings)
	}
	for _, f := range s.Report.Findings {
		m := New()
		m.SetSize(400, 300)
		m.SetItem(theme.New(false, true), Item{Key: "finding:" + f.Key, Finding: &f, Probe: s.Probe(f.Probe), Report: s.Report, Version: "1"})
		content := m.vp.GetContent()
		if leaks := probetest.Leaks(content); len(leaks) > 0 {
			t.Errorf("detail of %s shows %q:\n%s", f.ID, leaks, content)
		}
		if !strings.Contains(content, model.Redacted) {
			t.Errorf("detail of %s has no redaction marker:\n%s", f.ID, content)
		}
	}
	for _, l := range s.Log {
		if leaks := probetest.Leaks(l.Text); len(leaks) > 0 {
			t.Errorf("event log shows %q: %q", leaks, l.Text)
		}
	}
}
