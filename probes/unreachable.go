package probes

import (
	"errors"
	"strings"
	"syscall"

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
