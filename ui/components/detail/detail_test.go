package detail

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
	"github.com/netsleuth/netsleuth/ui/state"
	"github.com/netsleuth/netsleuth/ui/theme"
)

func store(t *testing.T, names ...string) *state.Store {
	first, _ := uitest.Demo(t)
	return uitest.Store(t, first, names...)
}

func show(t *testing.T, s *state.Store, key string, w, h int) Model {
	t.Helper()
	f, ok := s.Finding(key)
	if !ok {
		t.Fatalf("no finding %s", key)
	}
	m := New()
	m.SetSize(w, h)
	m.SetItem(theme.New(false, true), Item{Key: "finding:" + key, Finding: &f, Probe: s.Probe(f.Probe), Report: s.Report, Version: "1"})
	return m
}

// TestRootCauseFirstCommandsWhole: the SNAT root cause at 80×16, compact:
// its sentence before the evidence and the fixes; every command line of
// the content is whole (one line, however wide), never wrapped.
func TestRootCauseFirstCommandsWhole(t *testing.T) {
	s := store(t, "snat", "healthy")
	m := show(t, s, "node.no-masquerade|Node/nsl-node1|10.244.0.0/24->192.168.2.0/24", 80, 16)
	golden.RequireEqual(t, m.View())
	content := m.vp.GetContent()
	rc, ev, fx := strings.Index(content, "Root cause"), strings.Index(content, "Evidence"), strings.Index(content, "Fixes")
	if rc < 0 || rc > ev || ev > fx {
		t.Errorf("sections out of order: root cause %d, evidence %d, fixes %d", rc, ev, fx)
	}
	f, _ := s.Finding("node.no-masquerade|Node/nsl-node1|10.244.0.0/24->192.168.2.0/24")
	for _, fix := range f.Fixes {
		for _, c := range fix.Commands {
			for _, l := range strings.Split(c, "\n") {
				if !strings.Contains(content, l) {
					t.Errorf("command line not whole on one line: %q", l)
				}
			}
		}
	}
	if !strings.Contains(m.Position(), "→") {
		t.Errorf("position %q does not say lines go on to the right", m.Position())
	}
}

// TestScrollAndFixMarks: ] marks the next fix and scrolls to it.
func TestScrollAndFixMarks(t *testing.T) {
	s := store(t, "snat", "healthy")
	m := show(t, s, "node.no-masquerade|Node/nsl-node1|10.244.0.0/24->192.168.2.0/24", 80, 10)
	m.MoveFix(theme.New(false, true), 1)
	if _, n, _ := m.SelectedFix(); n != 2 {
		t.Fatalf("fix %d marked, want 2", n)
	}
	if !strings.Contains(m.View(), "▶ 2") {
		t.Errorf("the view did not scroll to fix 2:\n%s", m.View())
	}
	m.MoveFix(theme.New(false, true), -1)
	m.ScrollRight()
	if !strings.Contains(m.Position(), "←8") {
		t.Errorf("position after → = %q", m.Position())
	}
}

// TestPodGridOfTheSymptoms: a root cause that pod-to-pod cites shows the
// matrix read from pod-to-pod's evidence; external's pair-shaped lines
// towards an off-cluster target do not make a matrix.
func TestPodGridOfTheSymptoms(t *testing.T) {
	s := store(t, "snat", "healthy")
	f, _ := s.Finding("node.no-masquerade|Node/nsl-node1|10.244.0.0/24->192.168.2.0/24")
	p := &page{th: theme.New(false, true), width: 100}
	p.finding(f, s.Report, 0)
	if strings.Contains(strings.Join(p.lines, "\n"), "Pod-to-pod matrix") {
		t.Error("external's evidence made a pod-to-pod matrix")
	}
	var pp model.Finding
	for _, g := range s.Report.Findings {
		if g.Probe == "pod-to-pod" {
			pp = g
		}
	}
	cause := model.Finding{ID: "node.overlay-blocked", Key: "node.overlay-blocked/x", Probe: "nodenet", Status: model.StatusFail, Title: "VXLAN blocked"}
	pp.CausedBy, pp.Status = cause.Key, model.StatusFail
	r := model.NewReport(uitest.Lab, uitest.T0)
	r.Add(cause)
	r.Add(pp)
	p = &page{th: theme.New(false, true), width: 100}
	p.finding(cause, r, 0)
	out := strings.Join(p.lines, "\n")
	if !strings.Contains(out, "Pod-to-pod matrix") || !strings.Contains(out, "nsl-node2") {
		t.Errorf("the root cause shows no matrix of its symptom:\n%s", out)
	}
	p = &page{th: theme.New(false, true), width: 100}
	p.finding(pp, r, 0)
	out = strings.Join(p.lines, "\n")
	if !strings.Contains(out, "Pod-to-pod matrix") || strings.Contains(out, "pod agent ") || !strings.Contains(out, "measurement line(s) are the matrix above") {
		t.Errorf("pod-to-pod's finding repeats the matrix's lines as evidence:\n%s", out)
	}
	for _, l := range p.lines {
		if ansi.StringWidth(l) > 100 && !strings.Contains(l, "$ ") {
			t.Errorf("a prose line wider than the page: %q", l)
		}
	}
}
