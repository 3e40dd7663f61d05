package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/netsleuth/netsleuth/model"
)

func TestAPIUnreachable(t *testing.T) {
	refused := refusedErr
	reset := &url.Error{Op: "Get", URL: "https://10.0.0.1:6443/api", Err: &net.OpError{Op: "read", Net: "tcp",
		Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("listing pods: %w", refused), true},
		{fmt.Errorf("listing pods: %w", reset), true},
		{apierrors.NewServiceUnavailable("apiserver is shutting down"), true},
		{errors.New(`http2: server sent GOAWAY and closed the connection`), true},
		{&AgentLostError{Reason: LostAPIServer, Err: errors.New("EOF")}, true},
		{&AgentLostError{Reason: LostPodDeleted, Err: reset}, false}, // the pod is the fact, not the connection
		{apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "x"), false},
		{errors.New("dial tcp 10.0.0.2:10250: connect: connection refused"), false}, // a kubelet, said in words by the API server
	} {
		if got := APIUnreachable(c.err); got != c.want {
			t.Errorf("APIUnreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestErrorFindingMidRunFaults(t *testing.T) {
	info := model.ProbeInfo{ID: "pod-to-pod", Title: "Pod to pod"}
	refused := fmt.Errorf("listing pods: %w", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}})
	lost := func(reason string) error {
		return fmt.Errorf("measuring: %w", &AgentLostError{Kind: AgentPod, Node: "n2", Namespace: "netsleuth-r1", Pod: "netsleuth-pod-n2-r1",
			Reason: reason, Detail: "what happened", Err: errors.New("exec into netsleuth-r1/netsleuth-pod-n2-r1: EOF")})
	}
	for _, c := range []struct {
		name, id string
		err      error
		text     []string
	}{
		{"API server refused", FindingAPIUnreachable, refused, []string{"API server", "kubectl get --raw /readyz"}},
		{"API server lost mid-exec", FindingAPIUnreachable, lost(LostAPIServer), []string{"API server", "what happened"}},
		{"pod deleted", FindingAgentLost, lost(LostPodDeleted), []string{"node n2", "netsleuth-r1/netsleuth-pod-n2-r1", "what happened", "get events"}},
		{"kubelet", FindingAgentLost, lost(LostKubelet), []string{"node n2", "kubectl describe node n2"}},
		{"node NotReady", FindingAgentLost, lost(LostNodeDown), []string{"kubectl get node n2"}},
		{"stream cut", FindingAgentLost, lost(LostStreamCut), []string{"exec streams keep breaking"}},
		{"plain error", FindingError, errors.New("boom"), []string{"boom"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := errorFinding(info, "measuring pairs", c.err, nil)
			if f.ID != c.id || f.Status != model.StatusError {
				t.Fatalf("finding %s/%s, want %s/error", f.ID, f.Status, c.id)
			}
			all := f.Title + " " + f.RootCause + " " + strings.Join(f.Evidence, " ")
			for _, fx := range f.Fixes {
				all += " " + fx.Description + " " + strings.Join(fx.Commands, " ")
			}
			for _, w := range c.text {
				if !strings.Contains(all, w) {
					t.Errorf("finding lacks %q:\n%s", w, all)
				}
			}
		})
	}
	// A run being stopped is not an agent lost: the cause wins.
	if f := errorFinding(info, "measuring", lost(LostStreamCut), errors.New("the session was cancelled")); f.ID != FindingStopped {
		t.Errorf("cancelled run: %s, want %s", f.ID, FindingStopped)
	}
}

func TestWhileUnreachableRetriesOnlyAnUnansweredAPIServer(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	calls := 0
	err := WhileUnreachable(context.Background(), func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("deleting: %w", refused)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("err %v after %d calls, want nil after 3", err, calls)
	}
	calls = 0
	boom := errors.New("forbidden")
	if err := WhileUnreachable(context.Background(), func() error { calls++; return boom }); err != boom || calls != 1 {
		t.Errorf("a refusal is retried: %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WhileUnreachable(ctx, func() error { return refused }); !APIUnreachable(err) {
		t.Errorf("a cancelled context returns %v, want the last error", err)
	}
}

// TestAPIPatienceIsSharedAndResets: the patience is spent by the time the
// API server has not answered, across every call that shares it, and an
// answer in between starts it again.
func TestAPIPatienceIsSharedAndResets(t *testing.T) {
	p := &apiWait{limit: 30 * time.Second}
	t0 := time.Unix(1000, 0)
	if !p.observe(true, t0) || !p.observe(true, t0.Add(29*time.Second)) {
		t.Fatal("gave up within the limit")
	}
	if p.observe(true, t0.Add(30*time.Second)) {
		t.Error("kept trying after 30 s of no answer")
	}
	if !p.observe(false, t0.Add(31*time.Second)) || !p.observe(true, t0.Add(50*time.Second)) || !p.observe(true, t0.Add(79*time.Second)) {
		t.Error("an answer did not start the patience again")
	}
	if p.observe(true, t0.Add(80*time.Second)) {
		t.Error("the second outage outlasted the limit")
	}

	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	ctx := WithAPIPatience(context.Background(), 0)
	calls := 0
	if err := WhileUnreachable(ctx, func() error { calls++; return refused }); !APIUnreachable(err) || calls != 1 {
		t.Errorf("spent patience: %v after %d calls, want one try", err, calls)
	}
}
