package agent

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// sender stands in for the exec into an agent: it records each request
// sent, holds it until released, and answers each op with itself (a refusal
// when the request has an op to port 666). Ops to ports from fastPort on
// are reported done at once, through each, before the release.
type sender struct {
	mu      sync.Mutex
	sent    []ops.Request
	ctxs    []context.Context
	arrived chan struct{}
	release chan struct{}            // lets an exec into p1 answer
	gates   map[string]chan struct{} // the same for other pods
}

func newSender() *sender {
	return &sender{arrived: make(chan struct{}, 16), release: make(chan struct{}, 16), gates: map[string]chan struct{}{}}
}

func (s *sender) gate(pod string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pod == testAgent.Pod {
		return s.release
	}
	if s.gates[pod] == nil {
		s.gates[pod] = make(chan struct{}, 16)
	}
	return s.gates[pod]
}

const fastPort = 7000

func (s *sender) send(ctx context.Context, a probes.Agent, req ops.Request, each func(int, ops.Result)) (ops.Response, error) {
	gate := s.gate(a.Pod)
	s.mu.Lock()
	s.sent = append(s.sent, req)
	s.ctxs = append(s.ctxs, ctx)
	s.mu.Unlock()
	s.arrived <- struct{}{}
	for i, o := range req.Ops {
		if o.Port >= fastPort && each != nil {
			each(i, ops.Result{Op: o, Outcome: ops.OK})
		}
	}
	select {
	case <-gate:
	case <-ctx.Done():
		return ops.Response{}, context.Cause(ctx)
	}
	resp := ops.Response{Hostname: "agent"}
	for _, o := range req.Ops {
		if o.Port == 666 {
			return ops.Response{Error: "no"}, &ops.Refusal{Reason: "no"}
		}
		resp.Results = append(resp.Results, ops.Result{Op: o, Outcome: ops.OK})
	}
	return resp, nil
}

func tcp(ports ...int) ops.Request {
	var r ops.Request
	for _, p := range ports {
		r.Ops = append(r.Ops, ops.Op{Kind: ops.TCP, Target: "10.0.0.1", Port: p})
	}
	return r
}

func ports(rs []ops.Result) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.Op.Port)
	}
	return out
}

// recv is the answer on ch, failing the test when none comes.
func recv(t *testing.T, ch chan answer) answer {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no answer in 10 s")
		return answer{}
	}
}

// wait waits for the next exec to arrive, failing the test when none does.
func (s *sender) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no exec in 10 s")
	}
}

type answer struct {
	resp ops.Response
	err  error
}

// queued waits until n callers wait in a's queue.
func queued(t *testing.T, m *Manager, a probes.Agent, n int) {
	t.Helper()
	q := m.queue(a)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		q.mu.Lock()
		got := len(q.waiting)
		q.mu.Unlock()
		if got == n {
			return
		}
	}
	t.Fatalf("%d callers never queued", n)
}

func execAsync(ctx context.Context, m *Manager, a probes.Agent, req ops.Request) chan answer {
	out := make(chan answer, 1)
	go func() {
		resp, err := m.Exec(ctx, a, req)
		out <- answer{resp, err}
	}()
	return out
}

var testAgent = probes.Agent{Kind: probes.AgentPod, Node: "n1", Namespace: "ns", Pod: "p1"}

// busyAgent is a Manager whose exec into testAgent (one op, to port 1) is
// under way, held until s.release; requests made meanwhile wait for it
// (patience is a minute).
func busyAgent(t *testing.T) (*Manager, *sender, chan answer) {
	t.Helper()
	p := patience
	t.Cleanup(func() { patience = p })
	patience = time.Minute
	m := NewManager(fake.NewClientset(), nil, Config{RunID: "r", Image: "img"})
	s := newSender()
	m.send = s.send
	first := execAsync(context.Background(), m, testAgent, tcp(1))
	s.wait(t)
	return m, s, first
}

func TestExecQueueJoinsRequestsMadeDuringAnExec(t *testing.T) {
	m, s, first := busyAgent(t)
	ctx := context.Background()
	second := execAsync(ctx, m, testAgent, tcp(2, 3))
	queued(t, m, testAgent, 1)
	third := execAsync(ctx, m, testAgent, tcp(4))
	queued(t, m, testAgent, 2)
	// Another agent's request is not held up by this one's exec.
	other := testAgent
	other.Pod = "p2"
	elsewhere := execAsync(ctx, m, other, tcp(9))
	s.wait(t)
	s.gate(other.Pod) <- struct{}{}
	if a := recv(t, elsewhere); a.err != nil || !slices.Equal(ports(a.resp.Results), []int{9}) {
		t.Fatalf("the other agent: %+v", a)
	}

	s.release <- struct{}{} // the first exec ends; the two waiting go together
	if a := recv(t, first); a.err != nil || !slices.Equal(ports(a.resp.Results), []int{1}) {
		t.Fatalf("first: %+v", a)
	}
	s.wait(t)
	s.release <- struct{}{}
	a2, a3 := recv(t, second), recv(t, third)
	if a2.err != nil || !slices.Equal(ports(a2.resp.Results), []int{2, 3}) || a2.resp.Hostname != "agent" {
		t.Errorf("second: %+v", a2)
	}
	if a3.err != nil || !slices.Equal(ports(a3.resp.Results), []int{4}) {
		t.Errorf("third: %+v", a3)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) != 3 || !slices.Equal(ports(resultsOf(s.sent[2])), []int{2, 3, 4}) {
		t.Errorf("sent %d execs, the last %v; want 3 (1, 9, then 2, 3 and 4 joined)", len(s.sent), s.sent[len(s.sent)-1])
	}
}

func resultsOf(r ops.Request) []ops.Result {
	var out []ops.Result
	for _, o := range r.Ops {
		out = append(out, ops.Result{Op: o})
	}
	return out
}

// A refusal of the joined request is one caller's: each is sent alone and
// only that caller is refused.
func TestExecQueueRefusalIsTheCallersOwn(t *testing.T) {
	m, s, first := busyAgent(t)
	ctx := context.Background()
	good := execAsync(ctx, m, testAgent, tcp(2))
	queued(t, m, testAgent, 1)
	bad := execAsync(ctx, m, testAgent, tcp(666))
	queued(t, m, testAgent, 2)
	go func() {
		for range 4 { // first, the joined one, then good and bad alone
			s.release <- struct{}{}
		}
	}()
	go func() {
		for range 3 {
			<-s.arrived
		}
	}()
	recv(t, first)
	if a := recv(t, good); a.err != nil || !slices.Equal(ports(a.resp.Results), []int{2}) {
		t.Errorf("the good request: %+v", a)
	}
	var refusal *ops.Refusal
	if a := recv(t, bad); !errors.As(a.err, &refusal) {
		t.Errorf("the refused request: %+v", a)
	}
}

// A caller who stops waiting gets its context's error at once; the exec it
// shares goes on for the others, and ends when no one waits any more.
func TestExecQueueCallersLeaveAlone(t *testing.T) {
	m, s, first := busyAgent(t)
	ctxB, cancelB := context.WithCancel(context.Background())
	ctxC, cancelC := context.WithCancel(context.Background())
	b := execAsync(ctxB, m, testAgent, tcp(2))
	queued(t, m, testAgent, 1)
	c := execAsync(ctxC, m, testAgent, tcp(3))
	queued(t, m, testAgent, 2)
	s.release <- struct{}{}
	recv(t, first)
	s.wait(t) // b and c joined
	cancelB()
	if a := recv(t, b); !errors.Is(a.err, context.Canceled) {
		t.Fatalf("b after its cancel: %+v", a)
	}
	s.mu.Lock()
	joined := s.ctxs[1]
	s.mu.Unlock()
	if joined.Err() != nil {
		t.Fatal("the joined exec ended while c still waited")
	}
	cancelC()
	recv(t, c)
	select {
	case <-joined.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the joined exec goes on with no one waiting")
	}
}

// Requests beyond batchOps ops are not joined.
func TestExecQueueBoundsABatch(t *testing.T) {
	m, s, first := busyAgent(t)
	ctx := context.Background()
	big := make([]int, batchOps)
	for i := range big {
		big[i] = 1000 + i
	}
	a := execAsync(ctx, m, testAgent, tcp(big...))
	queued(t, m, testAgent, 1)
	b := execAsync(ctx, m, testAgent, tcp(2))
	queued(t, m, testAgent, 2)
	go func() {
		for range 3 {
			s.release <- struct{}{}
		}
	}()
	recv(t, first)
	s.wait(t)
	s.wait(t)
	if r := recv(t, a); r.err != nil || len(r.resp.Results) != batchOps {
		t.Errorf("big: %d results, %v", len(r.resp.Results), r.err)
	}
	if r := recv(t, b); r.err != nil || !slices.Equal(ports(r.resp.Results), []int{2}) {
		t.Errorf("small: %+v", r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) != 3 {
		t.Errorf("%d execs, want 3 (the big request alone)", len(s.sent))
	}
}

// Requests made within linger of each other to an idle agent share its
// first exec.
func TestExecQueueFirstRequestsLinger(t *testing.T) {
	defer func(l time.Duration) { linger = l }(linger)
	linger = 300 * time.Millisecond // room for a loaded machine to start both callers
	m := NewManager(fake.NewClientset(), nil, Config{RunID: "r", Image: "img"})
	s := newSender()
	m.send = s.send
	a := execAsync(context.Background(), m, testAgent, tcp(1))
	b := execAsync(context.Background(), m, testAgent, tcp(2))
	s.wait(t)
	s.release <- struct{}{}
	if ra, rb := recv(t, a), recv(t, b); ra.err != nil || rb.err != nil || !slices.Equal(ports(ra.resp.Results), []int{1}) || !slices.Equal(ports(rb.resp.Results), []int{2}) {
		t.Fatalf("answers %+v, %+v", ra, rb)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) != 1 {
		t.Errorf("%d execs for two requests made together, want 1", len(s.sent))
	}
}

// A caller of a joined exec gets its results when its own ops are done,
// while another caller's ops still run.
func TestExecQueueJoinedCallersLeaveWhenTheirOpsAreDone(t *testing.T) {
	m, s, first := busyAgent(t)
	ctx := context.Background()
	slow := execAsync(ctx, m, testAgent, tcp(2))
	queued(t, m, testAgent, 1)
	fast := execAsync(ctx, m, testAgent, tcp(fastPort, fastPort+1))
	queued(t, m, testAgent, 2)
	s.release <- struct{}{}
	recv(t, first)
	s.wait(t) // slow and fast joined
	if a := recv(t, fast); a.err != nil || !slices.Equal(ports(a.resp.Results), []int{fastPort, fastPort + 1}) {
		t.Fatalf("fast, while the slow op still runs: %+v", a)
	}
	select {
	case a := <-slow:
		t.Fatalf("the slow caller answered before its op was done: %+v", a)
	default:
	}
	s.release <- struct{}{}
	if a := recv(t, slow); a.err != nil || !slices.Equal(ports(a.resp.Results), []int{2}) {
		t.Errorf("slow: %+v", a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) != 2 || len(s.sent[1].Ops) != 3 {
		t.Errorf("%d execs, want 2 (the first, then slow and fast joined)", len(s.sent))
	}
}

// A request made while a slow exec is under way goes in an exec of its own
// after patience, not when the slow one ends.
func TestExecQueueDoesNotWaitBehindASlowExec(t *testing.T) {
	m, s, first := busyAgent(t)
	patience = 50 * time.Millisecond
	next := execAsync(context.Background(), m, testAgent, tcp(2))
	s.wait(t) // its own exec, beside the first
	s.release <- struct{}{}
	if a := recv(t, first); a.err != nil {
		t.Fatal(a.err)
	}
	s.release <- struct{}{}
	if a := recv(t, next); a.err != nil || !slices.Equal(ports(a.resp.Results), []int{2}) {
		t.Errorf("next: %+v", a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) != 2 {
		t.Errorf("%d execs, want 2", len(s.sent))
	}
}
