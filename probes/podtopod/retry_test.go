package podtopod

import (
	"context"
	"sync"
	"testing"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/probetest"
)

// scripted answers every op with the next outcome for its target; targets
// without a script answer OK.
type scripted struct {
	probetest.Agents
	mu    sync.Mutex
	plan  map[string][]ops.Outcome
	calls int
}

func (s *scripted) Exec(_ context.Context, _ probes.Agent, req ops.Request) (ops.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	var resp ops.Response
	next := map[string]ops.Outcome{}
	for t, plan := range s.plan {
		if len(plan) > 0 {
			next[t], s.plan[t] = plan[0], plan[1:]
		}
	}
	for _, op := range req.Ops {
		out := ops.OK
		if o, ok := next[op.Target]; ok {
			out = o
		}
		resp.Results = append(resp.Results, ops.Result{Op: op, Outcome: out})
	}
	return resp, nil
}

func TestRemeasureKeepsOnlyRepeatedFailures(t *testing.T) {
	src := probes.Agent{Kind: probes.AgentPod, Node: "n1", Pod: "a", IP: "10.0.0.1"}
	flaky := probes.Agent{Kind: probes.AgentPod, Node: "n2", Pod: "b", IP: "10.0.1.1"}
	broken := probes.Agent{Kind: probes.AgentPod, Node: "n3", Pod: "c", IP: "10.0.2.1"}
	s := &scripted{plan: map[string][]ops.Outcome{
		flaky.IP:  {ops.Timeout, ops.OK},
		broken.IP: {ops.Timeout, ops.Timeout},
	}}
	env := &probes.Env{Agents: s}
	pairs, err := measureFrom(context.Background(), env, src, []probes.Agent{flaky, broken})
	if err != nil {
		t.Fatal(err)
	}
	if countFailed(pairs) != 2 {
		t.Fatalf("first measurement: want 2 failing pairs, got %d", countFailed(pairs))
	}
	again, err := remeasure(context.Background(), env, pairs)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Failed() || again[0].Attempts != 2 {
		t.Errorf("a pair that answers the second time must count as working: %+v", again[0])
	}
	if !again[1].Failed() || again[1].Attempts != 2 {
		t.Errorf("a pair failing twice must stay failing with 2 attempts: %+v", again[1])
	}
	if s.calls != 2 {
		t.Errorf("want one exec per measurement from the source, got %d", s.calls)
	}
	if ev := pairEvidence(again[1]); ev[len(ev)-1] != "the same result on each of 2 attempts, 1s apart" {
		t.Errorf("evidence does not say the failure repeated: %q", ev)
	}
}
