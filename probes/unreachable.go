package probes

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// APIUnreachable reports whether err says the API server did not answer:
// the connection to it was refused, reset or lost (it was restarting, or the
// network to it broke), or it said it was shutting down. Such an error is a
// fact about the control plane, not about what the probe was testing.
func APIUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var lost *AgentLostError
	if errors.As(err, &lost) {
		return lost.Reason == LostAPIServer
	}
	if apierrors.IsServiceUnavailable(err) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) ||
		utilnet.IsHTTP2ConnectionLost(err) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "apiserver is shutting down") || strings.Contains(msg, "server sent GOAWAY")
}

// IgnoreUnreachable is err, or nil when err says the API server did not
// answer: for a poll that should keep trying through an API server restart.
func IgnoreUnreachable(err error) error {
	if APIUnreachable(err) {
		return nil
	}
	return err
}

// WhileUnreachable calls fn again, every second, while its error says the
// API server did not answer, until ctx ends or the run's patience with it
// (WithAPIPatience) is spent, and returns fn's last error: cleanups outlast
// an API server restart instead of leaving objects behind.
func WhileUnreachable(ctx context.Context, fn func() error) error {
	p, _ := ctx.Value(patienceKey{}).(*apiWait)
	for {
		err := fn()
		unreachable := APIUnreachable(err)
		if p != nil && !p.observe(unreachable, time.Now()) {
			return err
		}
		if !unreachable {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

type patienceKey struct{}

// apiWait is how long a run's cleanups, together, keep trying an API
// server that does not answer: a restart (seconds) is ridden out, a server
// gone for good costs the limit once, not once per cleanup and per object.
type apiWait struct {
	mu    sync.Mutex
	limit time.Duration
	since time.Time // when it was first found not answering; zero while it answers
}

// WithAPIPatience gives the WhileUnreachable calls under ctx one shared
// patience: once the API server has not answered for limit, counted from
// the first failure since it last answered, each call tries once and gives up.
func WithAPIPatience(ctx context.Context, limit time.Duration) context.Context {
	return context.WithValue(ctx, patienceKey{}, &apiWait{limit: limit})
}

// observe records whether the API server answered at now and reports
// whether trying again is still worth it.
func (p *apiWait) observe(unreachable bool, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !unreachable {
		p.since = time.Time{}
		return true
	}
	if p.since.IsZero() {
		p.since = now
	}
	return now.Sub(p.since) < p.limit
}
