package podtoservice

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/probetest"
)

// slowFirst answers its first exec late and refused (an exec joined with
// another probe's timeouts, right before kube-proxy's sync), every later
// one at once and answered.
type slowFirst struct {
	probetest.Agents
	mu    sync.Mutex
	calls int
	delay time.Duration
}

func (s *slowFirst) Exec(_ context.Context, _ probes.Agent, req ops.Request) (ops.Response, error) {
	s.mu.Lock()
	s.calls++
	first := s.calls == 1
	s.mu.Unlock()
	out := ops.OK
	if first {
		time.Sleep(s.delay)
		out = ops.Refused
	}
	var resp ops.Response
	for _, o := range req.Ops {
		resp.Results = append(resp.Results, ops.Result{Op: o, Outcome: out})
	}
	return resp, nil
}

// TestMeasureWindowStartsAtTheAnswer: a first answer that comes back after
// the whole settle window still gets its retries; the window counts from
// the answer, not from the ask.
func TestMeasureWindowStartsAtTheAnswer(t *testing.T) {
	defer func(s, p time.Duration) { settle, retryPause = s, p }(settle, retryPause)
	settle, retryPause = 200*time.Millisecond, 20*time.Millisecond
	in := fromInput(t, false, ops.OK)
	ag := &slowFirst{delay: 3 * settle}
	env := &probes.Env{Agents: ag}
	got, err := measure(context.Background(), env, in, []probes.Agent{in.Sources[0].Agent})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ClusterIP.Outcome != ops.OK || ag.calls < 2 {
		t.Errorf("after a late refused first answer: %d execs, ClusterIP %s; want a retry that is answered", ag.calls, got[0].ClusterIP.Outcome)
	}
}
