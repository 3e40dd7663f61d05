package state

import (
	"testing"
	"time"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
)

var t0 = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

func TestApplyDropsStaleEventsAndMergesSharedFacts(t *testing.T) {
	s := New(model.Cluster{}, t0, "r1", []model.ProbeInfo{{ID: "a"}, {ID: "b"}})
	fact := model.Finding{Probe: "a", ID: "node.fact", Status: model.StatusFail, Title: "fact", Subject: &model.Subject{Kind: "Node", Name: "n"}}.WithKey("")
	factB := fact
	factB.Probe = "b"
	sym := model.Finding{Probe: "b", ID: "b.sym", Status: model.StatusFail, Title: "sym"}.Symptom(fact)
	for _, e := range []model.Event{
		{RunID: "r1", Probe: "a", Type: model.EventStarted, Time: t0},
		{RunID: "r1", Probe: "a", Type: model.EventFinding, Finding: &fact},
		{RunID: "r1", Probe: "b", Type: model.EventFinding, Finding: &factB},
		{RunID: "r1", Probe: "b", Type: model.EventFinding, Finding: &sym},
		{RunID: "r1", Probe: "a", Type: model.EventFinished, Time: t0.Add(1500 * time.Millisecond)},
	} {
		if !s.Apply(e) {
			t.Fatalf("event %+v dropped", e)
		}
	}
	if s.Apply(model.Event{RunID: "old", Probe: "a", Type: model.EventStarted}) || s.Apply(model.Event{RunID: "r1", Probe: "zz"}) {
		t.Error("a stale or unknown event was applied")
	}
	if len(s.Report.Findings) != 2 || len(s.RootCauses) != 1 || s.Report.Summary.Symptoms != 1 {
		t.Errorf("report = %+v, root causes %d", s.Report.Findings, len(s.RootCauses))
	}
	if a, b := s.Probe("a"), s.Probe("b"); len(a.Findings) != 1 || len(b.Findings) != 2 || b.Worst() != model.StatusFail {
		t.Errorf("a has %d findings, b %d: the shared fact belongs to both", len(a.Findings), len(b.Findings))
	}
	if p := s.Probe("a"); p.Phase != Done || Seconds(p.Duration(t0)) != "1.5s" {
		t.Errorf("a: phase %v, %s", p.Phase, Seconds(p.Duration(t0)))
	}
	s.Restart("r2", []model.ProbeInfo{{ID: "b"}, {ID: "c"}}, t0)
	if p := s.Probe("b"); p.RunID != "r2" || p.Phase != Pending || len(p.Raw) != 0 {
		t.Errorf("b after restart = %+v", p)
	}
	if s.Probe("c") == nil || len(s.Probes) != 3 {
		t.Error("restart did not add the new probe")
	}
	if s.Apply(model.Event{RunID: "r1", Probe: "b", Type: model.EventFinding, Finding: &sym}) {
		t.Error("an event of b's old run was applied after the restart")
	}
	if _, running, done := s.Counts(); running != 0 || done != 1 {
		t.Errorf("counts: %d running, %d done", running, done)
	}
	if Seconds(125*time.Second) != "2m05s" {
		t.Errorf("Seconds(125s) = %s", Seconds(125*time.Second))
	}
}

// TestAgentNotStartedIsOneRootCause: two probes whose agents could not
// pull the image each record the shared agent.image-unavailable cause and
// their own agent-not-started symptom; the TUI shows one root cause with
// both symptoms under it, and each probe lists the cause and its symptom.
func TestAgentNotStartedIsOneRootCause(t *testing.T) {
	s := New(model.Cluster{}, t0, "r1", []model.ProbeInfo{{ID: "external"}, {ID: "pod-to-pod"}})
	a := probes.Agent{Kind: "pod", Node: "n1", Namespace: "netsleuth-r1", Pod: "netsleuth-pod-n1",
		Err: &probes.AgentStartError{Kind: "pod", Node: "n1", Pod: "netsleuth-pod-n1", Reason: "ErrImageNeverPull", Detail: "image not present"}}
	for _, id := range []string{"external", "pod-to-pod"} {
		s.Apply(model.Event{RunID: "r1", Probe: id, Type: model.EventStarted, Time: t0})
		for _, f := range agent.NotStarted(id, a) {
			f.Probe = id
			s.Apply(model.Event{RunID: "r1", Probe: id, Type: model.EventFinding, Finding: &f})
		}
		s.Apply(model.Event{RunID: "r1", Probe: id, Type: model.EventFinished, Time: t0.Add(time.Second)})
	}
	if len(s.RootCauses) != 1 || s.RootCauses[0].ID != "agent.image-unavailable" {
		t.Fatalf("root causes = %+v, want agent.image-unavailable alone", s.RootCauses)
	}
	if syms := s.Report.Symptoms(s.RootCauses[0].Key); len(syms) != 2 {
		t.Errorf("%d symptoms under the cause, want external's and pod-to-pod's", len(syms))
	}
	for _, id := range []string{"external", "pod-to-pod"} {
		if p := s.Probe(id); len(p.Findings) != 2 || p.Worst() != model.StatusError {
			t.Errorf("%s: %d findings, worst %s; want the cause and its symptom", id, len(p.Findings), p.Worst())
		}
	}
}

// The session's own progress (the agents it starts as the run begins, no
// probe) goes to the log and changes no probe.
func TestApplyLogsTheSessionsProgress(t *testing.T) {
	s := New(model.Cluster{}, t0, "r1", []model.ProbeInfo{{ID: "a"}})
	msg := "starting agents on 2 node(s) (n1, n2) in namespace netsleuth-r1 as the run begins: privileged node agents (hostNetwork, host / mounted read-only) for node-sysctl"
	if !s.Apply(model.Event{RunID: "r1", Type: model.EventProgress, Time: t0, Message: msg}) {
		t.Fatal("the session's progress was dropped")
	}
	if n := len(s.Log); n == 0 || s.Log[n-1].Text != msg || s.Log[n-1].Probe != "" {
		t.Errorf("log = %+v", s.Log)
	}
	if p := s.Probe("a"); p.Phase != Pending || p.Stage != "" {
		t.Errorf("probe a changed: %+v", p)
	}
}
