package agent

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// batchOps bounds the ops several callers' requests are joined into: the
// agent runs a request's ops 32 at a time, so a larger batch would hold up
// every caller in it. A request larger than that goes alone.
const batchOps = 64

// maxExecs bounds the execs into one agent under way at once.
const maxExecs = 4

var (
	// linger is how long an idle agent's first request waits for others
	// before it is sent: the probes that waited for the agent to start
	// ask it within a few milliseconds of each other, and then share one
	// exec instead of two.
	linger = 25 * time.Millisecond
	// patience is how long a request made while an exec into the agent is
	// under way waits for it to end before it goes in an exec of its own
	// (with whatever else waits by then): a healthy exec ends sooner, one
	// whose ops wait for timeouts does not hold up the next probe's.
	patience = 500 * time.Millisecond
)

// execQueue sends one agent's requests. A request made while an exec into
// the agent is under way waits for it to end, or for patience; then every
// request waiting goes in one exec, their ops joined, and each caller gets
// its own results back as soon as its own ops are done. The probes of a
// run ask an agent at the same moment (they all wait for it to start), so
// this makes one API request of what were several; an idle agent's first
// request waits linger for the others.
type execQueue struct {
	m *Manager

	mu       sync.Mutex
	inflight int  // execs under way
	pending  bool // a send is due after linger
	waiting  []*execCall
}

// execCall is one caller's request and, once done is closed, its answer.
type execCall struct {
	ctx  context.Context
	a    probes.Agent
	req  ops.Request
	resp ops.Response
	err  error
	done chan struct{}

	left   int // with a joined exec: its ops not answered yet
	closed bool
}

// finish hands the caller its answer once.
func (c *execCall) finish() {
	if !c.closed {
		c.closed = true
		close(c.done)
	}
}

// queue is a's execQueue, made on first use.
func (m *Manager) queue(a probes.Agent) *execQueue {
	key := a.Namespace + "/" + a.Pod + "/" + m.containerFor(a)
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.execs[key]
	if q == nil {
		q = &execQueue{m: m}
		m.execs[key] = q
	}
	return q
}

// exec queues req for a and waits for its answer (or for ctx).
func (q *execQueue) exec(ctx context.Context, a probes.Agent, req ops.Request) (ops.Response, error) {
	c := &execCall{ctx: ctx, a: a, req: req, done: make(chan struct{})}
	q.mu.Lock()
	q.waiting = append(q.waiting, c)
	switch {
	case q.inflight > 0:
		time.AfterFunc(patience, q.next)
	case !q.pending:
		q.pending = true
		time.AfterFunc(linger, q.next)
	}
	q.mu.Unlock()
	select {
	case <-c.done:
		return c.resp, c.err
	case <-ctx.Done():
		return ops.Response{}, context.Cause(ctx)
	}
}

// next sends the waiting callers as one exec, unless none waits or
// maxExecs are under way, and then whoever waits when it ends.
func (q *execQueue) next() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = false
	for q.inflight < maxExecs {
		batch := q.take()
		if len(batch) == 0 {
			return
		}
		q.inflight++
		q.mu.Unlock()
		q.send(batch)
		q.mu.Lock()
		q.inflight--
	}
}

// take removes the next batch from the waiting callers: the first one, and
// those after it while the ops stay within batchOps. Callers who stopped
// waiting are dropped. q.mu is held.
func (q *execQueue) take() []*execCall {
	var batch []*execCall
	n, i := 0, 0
	for ; i < len(q.waiting); i++ {
		c := q.waiting[i]
		if c.ctx.Err() != nil {
			continue
		}
		if len(batch) > 0 && n+len(c.req.Ops) > batchOps {
			break
		}
		batch = append(batch, c)
		n += len(c.req.Ops)
	}
	q.waiting = q.waiting[i:]
	if len(q.waiting) > 0 && q.inflight+1 < maxExecs {
		go q.next() // what did not fit goes beside this batch
	}
	return batch
}

// send runs batch as one exec and hands each caller its results, a caller
// of a joined exec as soon as its own ops are answered. A refusal of the
// joined request (the agent checks what it reads on its own side too)
// would be one caller's fault, so each is then sent alone.
func (q *execQueue) send(batch []*execCall) {
	var mu sync.Mutex // guards the callers' answers while the exec reports
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range batch {
			c.finish()
		}
	}()
	if len(batch) == 1 {
		c := batch[0]
		c.resp, c.err = q.m.send(c.ctx, c.a, c.req, nil)
		return
	}
	ctx, cancel := whileAnyWaits(batch)
	defer cancel()
	var joined ops.Request
	owner := make([]*execCall, 0, batchOps)
	offset := make([]int, 0, batchOps)
	for _, c := range batch {
		c.resp.Results, c.left = make([]ops.Result, len(c.req.Ops)), len(c.req.Ops)
		for i := range c.req.Ops {
			owner, offset = append(owner, c), append(offset, i)
		}
		joined.Ops = append(joined.Ops, c.req.Ops...)
	}
	each := func(i int, r ops.Result) {
		mu.Lock()
		defer mu.Unlock()
		c := owner[i]
		if c.closed || c.left == 0 {
			return
		}
		c.resp.Results[offset[i]] = r
		if c.left--; c.left == 0 {
			c.finish()
		}
	}
	resp, err := q.m.send(ctx, batch[0].a, joined, each)
	if refusal := (*ops.Refusal)(nil); errors.As(err, &refusal) {
		for _, c := range batch {
			c.resp, c.err = q.m.send(c.ctx, c.a, c.req, nil)
		}
		return
	}
	mu.Lock()
	defer mu.Unlock()
	off := 0
	for _, c := range batch {
		if !c.closed {
			r := resp
			r.Results = nil
			if len(resp.Results) == len(joined.Ops) {
				r.Results = resp.Results[off : off+len(c.req.Ops) : off+len(c.req.Ops)]
			}
			c.resp, c.err = r, err
		}
		off += len(c.req.Ops)
	}
}

// whileAnyWaits is a context that ends when every caller of batch has
// stopped waiting, carrying the first caller's values.
func whileAnyWaits(batch []*execCall) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(batch[0].ctx))
	var left atomic.Int64
	left.Store(int64(len(batch)))
	stops := make([]func() bool, 0, len(batch))
	for _, c := range batch {
		stops = append(stops, context.AfterFunc(c.ctx, func() {
			if left.Add(-1) == 0 {
				cancel(context.Cause(c.ctx))
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel(nil)
	}
}
