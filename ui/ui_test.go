package ui

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/components/header"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
)

// demo is `make demo` done: external found the missing SNAT, every other
// default probe is healthy.
func demo(t *testing.T, w, h int) *session {
	first, extra := uitest.Demo(t)
	s := newSession(t, w, h, first, extra)
	s.playAll(uitest.Findings(t, "snat", "healthy"))
	return s
}

// checkFrame asserts the frame is exactly w×h cells at most: h lines, none
// wider than w.
func checkFrame(t *testing.T, screen string, w, h int) {
	t.Helper()
	lines := strings.Split(screen, "\n")
	if len(lines) != h {
		t.Errorf("%d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d cells wide, more than %d: %q", i+1, n, w, l)
		}
	}
}

// TestDemoFirstScreen80x24 is the newcomer's first screen: the root cause
// selected, its sentence and the first fix's command on screen at 80×24,
// the command on one line (cut by the pane, never wrapped).
func TestDemoFirstScreen80x24(t *testing.T) {
	s := demo(t, 80, 24)
	out := s.screen()
	checkFrame(t, out, 80, 24)
	for _, want := range []string{"[1 Root causes (1)]", "No source NAT on node nsl-node1", "Root cause", "$ iptables -t nat -C POSTROUTING -s 10.244.0.0/24 -d 192.168.2.0/24", "? help", "q quit"} {
		if !strings.Contains(out, want) {
			t.Errorf("first screen lacks %q:\n%s", want, out)
		}
	}
	golden.RequireEqual(t, out)
}

func TestDemoWide200x60(t *testing.T) {
	s := demo(t, 200, 60)
	s.send(clusterDiscoveredMsg{facts: headerFacts()})
	out := s.screen()
	checkFrame(t, out, 200, 60)
	// Wide: the list and the detail side by side, the whole command visible.
	if !strings.Contains(out, "│● finding") && !strings.Contains(out, "│○ finding") {
		t.Errorf("no side-by-side detail pane:\n%s", out)
	}
	golden.RequireEqual(t, out)
}

// TestDemoColor is the 100×30 screen with colours on a dark background.
func TestDemoColor(t *testing.T) {
	first, extra := uitest.Demo(t)
	s := newSession(t, 100, 30, first, extra)
	s.m.color = true
	s.send(tea.BackgroundColorMsg{})
	s.playAll(uitest.Findings(t, "snat", "healthy"))
	out := s.screen()
	if !strings.Contains(out, "\x1b[") {
		t.Error("the colour theme drew no colour")
	}
	checkFrame(t, out, 100, 30)
	golden.RequireEqual(t, out)
}

// TestNoColorDrawsNoColor: with NO_COLOR (Color false, the default of
// newSession) the screen has no colour sequence; statuses read as words.
func TestNoColorDrawsNoColor(t *testing.T) {
	s := demo(t, 100, 30)
	s.key("2")
	out := s.screen()
	if strings.Contains(out, "\x1b[3") || strings.Contains(out, "\x1b[9") || strings.Contains(out, "\x1b[38") {
		t.Errorf("colour sequence without colour:\n%q", out)
	}
	for _, want := range []string{"✗ FAIL  external", "✓ PASS  dns"} {
		if !strings.Contains(out, want) {
			t.Errorf("probe list lacks %q:\n%s", want, out)
		}
	}
}

// TestResize: every size from tiny to huge draws exactly the terminal, and
// a terminal too small says how small it is.
func TestResize(t *testing.T) {
	s := demo(t, 80, 24)
	for _, sz := range [][2]int{{80, 24}, {40, 12}, {60, 20}, {120, 40}, {200, 60}, {81, 25}, {100, 30}} {
		s.send(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		for _, k := range []string{"", "l", "enter", "esc"} {
			if k != "" {
				s.key(k)
			}
			checkFrame(t, s.screen(), sz[0], sz[1])
		}
		s.key("l")
	}
	s.send(tea.WindowSizeMsg{Width: 30, Height: 8})
	if out := s.screen(); !strings.Contains(out, "at least 40×12") || !strings.Contains(out, "30×8") {
		t.Errorf("small terminal: %q", out)
	}
}

// TestNavigateOpenScrollBack: 2 probes, move to a finding, enter opens it
// full screen, j scrolls, esc comes back to the list.
func TestNavigateOpenScrollBack(t *testing.T) {
	s := demo(t, 80, 24)
	s.key("2")
	s.key("g")
	if sel, _ := s.m.probes.Selected(); sel.Probe != "external" {
		t.Fatalf("top of the probe list = %+v, want external (scenario A)", sel)
	}
	s.key("j")
	sel, _ := s.m.probes.Selected()
	if sel.Finding == "" {
		t.Fatalf("below external: %+v, want its first finding", sel)
	}
	s.key("enter")
	if !s.m.zoom || s.m.focus != FocusDetail || !strings.Contains(s.screen(), "full screen, esc to go back") {
		t.Fatalf("enter did not open the finding full screen:\n%s", s.screen())
	}
	before := s.m.detail.Position()
	s.key("j")
	s.key("j")
	if after := s.m.detail.Position(); after == before {
		t.Errorf("j did not scroll the detail (%s)", after)
	}
	s.key("right")
	if !strings.Contains(s.m.detail.Position(), "←8") {
		t.Errorf("→ did not scroll sideways: %s", s.m.detail.Position())
	}
	s.key("esc")
	if s.m.zoom {
		t.Error("esc did not leave the full-screen view")
	}
	s.key("esc")
	if s.m.focus != FocusNav {
		t.Errorf("second esc: focus %v, want the list", s.m.focus)
	}
	if s.m.phase != phaseRunning {
		t.Error("esc quit")
	}
}

// TestStaleRunEventsAreDropped: r reruns the selected probe as a new run;
// the old run's late events no longer change it.
func TestStaleRunEventsAreDropped(t *testing.T) {
	s := demo(t, 100, 30)
	s.key("2")
	s.key("g")
	s.key("r")
	if len(s.r.reruns) != 1 || len(s.r.reruns[0]) != 1 || s.r.reruns[0][0] != "external" {
		t.Fatalf("reruns = %v, want [[external]]", s.r.reruns)
	}
	p := s.m.store.Probe("external")
	if p.RunID != "rerun1" || len(p.Findings) != 0 {
		t.Fatalf("after r: external run %s with %d findings, want rerun1 with none", p.RunID, len(p.Findings))
	}
	snat := uitest.Findings(t, "snat")
	s.event(s.r.id, "external", model.EventFinding, &snat[0], "") // the superseded run, late
	if len(p.Findings) != 0 {
		t.Errorf("a stale event added a finding: %+v", p.Findings)
	}
	healthy := model.Finding{ID: "external.reachable", Probe: "external", Status: model.StatusPass, Title: "Pods reach 192.168.2.10:80"}
	s.run("rerun1", "external", []model.Finding{healthy}, time.Second)
	if p.Worst() != model.StatusPass || !strings.Contains(s.screen(), "✓ PASS  external") {
		t.Errorf("after the rerun passed, external is %s:\n%s", p.Worst(), s.screen())
	}
	s.key("R")
	if got := s.r.reruns[len(s.r.reruns)-1]; len(got) != len(s.m.store.Probes) {
		t.Errorf("R reran %v, want every probe", got)
	}
}

// TestCopyFix: c puts the marked fix's commands on the clipboard and keeps
// them to print on exit; ] marks the next fix.
func TestCopyFix(t *testing.T) {
	s := demo(t, 80, 24)
	cmd := s.key("c")
	if cmd == nil || len(s.m.Copied()) != 1 {
		t.Fatalf("c gave no clipboard command (copied %v)", s.m.Copied())
	}
	if got := s.m.Copied()[0]; !strings.HasPrefix(got, "iptables -t nat -C POSTROUTING -s 10.244.0.0/24") || strings.Contains(got, "$ ") {
		t.Errorf("copied %q, want the bare command", got)
	}
	if !strings.Contains(s.screen(), "copied fix 1") {
		t.Errorf("no message after copying:\n%s", s.screen())
	}
	s.key("]")
	s.key("c")
	if got := s.m.Copied(); len(got) != 2 || !strings.Contains(got[1], "systemctl") {
		t.Errorf("fix 2 copied as %q, want the unit's commands", got)
	}
}

// TestHelpIsTheKeymap: ? shows every binding of the one keymap; esc closes.
func TestHelpIsTheKeymap(t *testing.T) {
	s := demo(t, 120, 40)
	s.key("?")
	out := s.screen()
	for _, col := range s.m.ctx.Keys.FullHelp() {
		for _, b := range col {
			if !strings.Contains(out, b.Help().Desc) {
				t.Errorf("help lacks %q (%s)", b.Help().Desc, b.Help().Key)
			}
		}
	}
	s.key("esc")
	if s.m.showHelp {
		t.Error("esc left the help open")
	}
}

// TestFilterAndFailingOnly: / filters as the user types, f shows only
// failing probes, esc clears.
func TestFilterAndFailingOnly(t *testing.T) {
	s := demo(t, 100, 30)
	s.key("f")
	if s.m.tab != TabProbes || s.m.probes.Shown() != 1 {
		t.Errorf("f: tab %v, %d probes shown, want external alone", s.m.tab, s.m.probes.Shown())
	}
	s.key("f")
	s.feed(s.key("/"))
	for _, r := range "coredns" {
		s.feed(s.send(tea.KeyPressMsg{Code: r, Text: string(r)}))
	}
	s.feed(s.key("enter"))
	if s.m.filter != "coredns" || !strings.Contains(s.screen(), `filter "coredns"`) {
		t.Fatalf("filter = %q:\n%s", s.m.filter, s.screen())
	}
	if n := s.m.probes.Shown(); n == 0 || n == len(s.m.store.Probes) {
		t.Errorf("filter shows %d of %d probes", n, len(s.m.store.Probes))
	}
	s.key("esc")
	if s.m.filter != "" {
		t.Errorf("esc left the filter %q", s.m.filter)
	}
}

// TestExport: e asks for a file and writes the report with the report
// package's writer for its extension.
func TestExport(t *testing.T) {
	s := demo(t, 100, 30)
	path := filepath.Join(t.TempDir(), "r.json")
	s.feed(s.key("e"))
	s.answer(path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("export wrote nothing: %v\n%s", err, s.screen())
	}
	var r model.Report
	if err := json.Unmarshal(b, &r); err != nil || len(r.Findings) != len(s.m.store.Report.Findings) {
		t.Errorf("exported %d findings (%v), want %d", len(r.Findings), err, len(s.m.store.Report.Findings))
	}
	if !strings.Contains(s.screen(), "exported") {
		t.Errorf("no message after export:\n%s", s.screen())
	}
}

// TestTargetAndPolicyPrompts: t asks for an external target and reruns
// external with it; a name goes to dns; p asks from and to for policy.
func TestTargetAndPolicyPrompts(t *testing.T) {
	s := demo(t, 100, 30)
	s.feed(s.key("t"))
	s.answer("192.168.2.10:80")
	if got := s.r.Options().Targets; len(got) != 1 || got[0] != "192.168.2.10:80" {
		t.Errorf("targets = %v", got)
	}
	if last := s.r.reruns[len(s.r.reruns)-1]; last[0] != "external" {
		t.Errorf("t reran %v, want external", last)
	}
	s.feed(s.key("p"))
	s.answer("default/client")
	s.answer("default/server:80")
	if o := s.r.Options(); o.From != "default/client" || o.To != "default/server:80" {
		t.Errorf("policy question = %q → %q", o.From, o.To)
	}
	if last := s.r.reruns[len(s.r.reruns)-1]; last[0] != "policy" {
		t.Errorf("p reran %v, want policy", last)
	}
	if sel, _ := s.m.probes.Selected(); sel.Probe != "policy" {
		t.Errorf("selection after p = %+v, want the policy probe", sel)
	}
}

// TestQuitCleansUp: q shows the cleanup until the session is closed, then
// quits; a failed cleanup stays on screen and names the cleanup command.
func TestQuitCleansUp(t *testing.T) {
	for _, fail := range []bool{false, true} {
		s := demo(t, 80, 24)
		if fail {
			s.r.closeErr = errors.New("namespaces \"netsleuth-c0ffee12\" is forbidden")
		}
		s.key("q")
		if s.m.phase != phaseCleaning || !strings.Contains(s.screen(), "cleaning up") {
			t.Fatalf("q: no cleanup screen:\n%s", s.screen())
		}
		if s.key("j") != nil || s.m.phase != phaseCleaning {
			t.Error("a key during the cleanup did something")
		}
		if out := s.screen(); strings.Contains(out, "r re-run") || !strings.Contains(out, "ctrl+c: leave now") {
			t.Errorf("the status bar offers keys that do nothing while cleaning up:\n%s", out)
		}
		cmd := s.send(closeSession(s.r)())
		if s.r.closed != 1 {
			t.Errorf("Close called %d times", s.r.closed)
		}
		quits := cmd != nil && isQuit(cmd())
		switch {
		case !fail && !quits:
			t.Error("after the cleanup the TUI did not quit")
		case fail && (quits || !strings.Contains(s.screen(), "cleanup failed") || !strings.Contains(s.screen(), "netsleuth cleanup")):
			t.Errorf("failed cleanup screen:\n%s", s.screen())
		case fail && !isQuit(s.key("x")()):
			t.Error("a key after a failed cleanup does not exit")
		}
	}
}

// TestCtrlCCancels: Ctrl-C (or a signal) starts the same cleanup; a second
// Ctrl-C leaves the screen while the cleanup finishes.
func TestCtrlCCancels(t *testing.T) {
	s := demo(t, 80, 24)
	s.send(interruptedMsg{})
	if s.m.phase != phaseCleaning {
		t.Fatal("a signal did not start the cleanup")
	}
	if cmd := s.key("ctrl+c"); cmd == nil || !isQuit(cmd()) {
		t.Error("a second ctrl+c does not leave")
	}
}

// TestMouseWheelScrollsThePaneUnderIt: the wheel over the detail scrolls
// it.
func TestMouseWheelScrollsThePaneUnderIt(t *testing.T) {
	s := demo(t, 80, 24)
	l := s.m.layout()
	before := s.m.detail.Position()
	s.send(tea.MouseWheelMsg{X: 2, Y: l.detTop + 1, Button: tea.MouseWheelDown})
	if s.m.detail.Position() == before {
		t.Errorf("the wheel did not scroll the detail (%s)", before)
	}
}

// TestProbeErrorIsAFinding: a probe that errs shows its error as a finding,
// the screen intact.
func TestProbeErrorIsAFinding(t *testing.T) {
	s := demo(t, 80, 24)
	s.key("2")
	s.key("r")
	e := model.Finding{ID: "external.error", Probe: "external", Status: model.StatusError, Title: "the probe failed: pods is forbidden: User \"dev\" cannot create resource \"pods\"\nin namespace \"default\""}
	s.run("rerun1", "external", []model.Finding{e}, time.Second)
	out := s.screen()
	checkFrame(t, out, 80, 24)
	if !strings.Contains(out, "ERROR") {
		t.Errorf("the error is not on screen:\n%s", out)
	}
}

func isQuit(msg tea.Msg) bool { _, ok := msg.(tea.QuitMsg); return ok }

func headerFacts() header.Facts {
	return header.Facts{Nodes: 2, CNI: "plain bridge", ProxyMode: "iptables"}
}

// answer replaces the open prompt's value with text and presses enter, as
// a user would (ctrl+u clears the line).
func (s *session) answer(text string) {
	s.t.Helper()
	s.feed(s.send(tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}))
	for _, r := range text {
		s.feed(s.send(tea.KeyPressMsg{Code: r, Text: string(r)}))
	}
	s.feed(s.key("enter"))
}

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
