package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
)

func infos() []model.ProbeInfo {
	return []model.ProbeInfo{
		{ID: "dns", Title: "DNS path", Scenario: "C", Description: "CoreDNS, NodeLocal DNS and kubelet clusterDNS."},
		{ID: "egress", Title: "Pod egress to external subnets", Scenario: "A"},
		{ID: "runtime", Title: "Container runtime", Scenario: "E"},
	}
}

// midRun is a screen with one probe done, one running and one pending.
func midRun() screen {
	dns := probeState{info: infos()[0]}
	for _, e := range []model.Event{
		{Type: model.EventStarted},
		{Type: model.EventFinding, Finding: &model.Finding{Probe: "dns", ID: "coredns", Status: model.StatusPass, Title: "CoreDNS is ready"}},
		{Type: model.EventFinding, Finding: &model.Finding{Probe: "dns", ID: "clusterdns", Status: model.StatusFail,
			Title:     "kubelet clusterDNS does not match kube-dns",
			Subject:   &model.Subject{Kind: "Node", Name: "worker-1"},
			RootCause: "kubelet on worker-1 sends pods to 10.96.0.11 but kube-dns is 10.96.0.10.",
			Evidence:  []string{"configz clusterDNS: [10.96.0.11]", "svc kube-system/kube-dns: 10.96.0.10"},
			Fixes: []model.Fix{{Description: "Set clusterDNS in the kubelet config and restart kubelet.",
				Commands: []string{"sudo sed -i 's/10.96.0.11/10.96.0.10/' /var/lib/kubelet/config.yaml", "sudo systemctl restart kubelet"}}}}},
		{Type: model.EventFinished},
	} {
		dns.apply(e)
	}
	egress := probeState{info: infos()[1]}
	egress.apply(model.Event{Type: model.EventStarted})
	egress.apply(model.Event{Type: model.EventProgress, Message: "pinging 192.168.2.10 from a pod"})
	return screen{width: 100, height: 24, runID: "c0ffee12", spinner: "⠋",
		cluster: model.Cluster{Context: "kind-lab", Server: "https://127.0.0.1:6443", Version: "v1.36.3"},
		probes:  []probeState{dns, egress, {info: infos()[2]}}}
}

func TestRenderDoneProbeSelected(t *testing.T) {
	golden.RequireEqual(t, render(midRun(), newStyles(false)))
}

func TestRenderRunningProbeSelected(t *testing.T) {
	s := midRun()
	s.selected = 1
	golden.RequireEqual(t, render(s, newStyles(false)))
}

func TestRenderColor(t *testing.T) {
	golden.RequireEqualEscape(t, []byte(render(midRun(), newStyles(true))), true)
}

func TestRenderFitsTheScreen(t *testing.T) {
	s := midRun()
	for _, w := range []int{60, 100, 160} {
		s.width, s.height = w, 12
		out := render(s, newStyles(false))
		lines := strings.Split(out, "\n")
		if len(lines) > s.height {
			t.Errorf("width %d: %d lines, want at most %d", w, len(lines), s.height)
		}
		for i, l := range lines {
			if n := len([]rune(l)); n > w {
				t.Errorf("width %d: line %d is %d cells: %q", w, i, n, l)
			}
		}
	}
}

func TestUpdateAppliesTaggedEventsAndKeys(t *testing.T) {
	ch := make(chan model.Event)
	cancelled := false
	m := newModel(&programContext{width: 100, height: 24, styles: newStyles(false)}, "run1", infos(), ch, func() { cancelled = true })

	step := func(msg tea.Msg) tea.Cmd {
		t.Helper()
		next, cmd := m.Update(msg)
		m = next.(Model)
		return cmd
	}
	if cmd := step(eventReceivedMsg{runID: "run1", event: model.Event{Probe: "egress", Type: model.EventStarted}}); cmd == nil {
		t.Error("an event did not re-arm waitForEvent")
	}
	step(eventReceivedMsg{runID: "old", event: model.Event{Probe: "dns", Type: model.EventStarted}})
	if m.probes[1].phase != phaseRunning || m.probes[0].phase != phasePending {
		t.Errorf("phases = %v %v, want egress running and the stale dns event dropped", m.probes[1].phase, m.probes[0].phase)
	}
	step(tea.KeyPressMsg{Code: tea.KeyDown})
	step(tea.KeyPressMsg{Code: tea.KeyDown})
	step(tea.KeyPressMsg{Code: tea.KeyDown})
	if m.selected != 2 {
		t.Errorf("selected = %d after three downs, want 2 (clamped)", m.selected)
	}
	step(tea.KeyPressMsg{Code: tea.KeyUp})
	if m.selected != 1 {
		t.Errorf("selected = %d after up, want 1", m.selected)
	}
	cmd := step(tea.KeyPressMsg{Code: 'q', Text: "q"})
	if !cancelled || cmd == nil {
		t.Fatal("q did not cancel the run and quit")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("q did not return tea.Quit")
	}
}

func TestWaitForEventReportsTheEnd(t *testing.T) {
	ch := make(chan model.Event, 1)
	ch <- model.Event{Probe: "dns", Type: model.EventStarted}
	close(ch)
	if msg, ok := waitForEvent("r", ch)().(eventReceivedMsg); !ok || msg.runID != "r" {
		t.Errorf("first message = %#v, want a tagged event", msg)
	}
	if _, ok := waitForEvent("r", ch)().(runFinishedMsg); !ok {
		t.Error("a closed channel did not yield runFinishedMsg")
	}
}

// blockingProbe waits for cancellation and records whether its cleanup ran
// with a live context.
type blockingProbe struct{ cleaned chan error }

func (blockingProbe) Info() model.ProbeInfo { return model.ProbeInfo{ID: "block", Title: "Blocks"} }

func (p blockingProbe) Run(ctx context.Context, _ *probes.Env, rec probes.Recorder) error {
	rec.Cleanup(func(c context.Context) error { p.cleaned <- c.Err(); return nil })
	rec.Stage("waiting forever")
	<-ctx.Done()
	return ctx.Err()
}

func TestRunCancelledContextStillCleansUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := blockingProbe{cleaned: make(chan error, 1)}
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	rep, _ := Run(ctx, Config{Probes: []probes.Probe{p}, Env: &probes.Env{}, In: strings.NewReader(""), Out: &strings.Builder{}})
	select {
	case err := <-p.cleaned:
		if err != nil {
			t.Errorf("cleanup got a dead context: %v", err)
		}
	default:
		t.Fatal("cleanup did not run before Run returned")
	}
	if rep == nil || len(rep.Findings) != 1 || rep.Findings[0].ID != probes.FindingStopped {
		t.Errorf("report = %+v, want one stopped finding", rep)
	}
}
