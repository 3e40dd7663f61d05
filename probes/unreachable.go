package probes

import (
	"context"
	"errors"
	"strings"
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

// WhileUnreachable calls fn again, every second, while its error says the
// API server did not answer, until ctx ends, and returns fn's last error:
// cleanups outlast an API server restart instead of leaving objects behind.
func WhileUnreachable(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if !APIUnreachable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}
