package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/exec"

	"github.com/netsleuth/netsleuth/probes"
)

// lostWait bounds how long the Manager asks the cluster why an exec failed:
// long enough for a restarting API server to answer again.
const lostWait = 20 * time.Second

// lostFacts is what the cluster said after an exec into an agent failed.
type lostFacts struct {
	ExecErr  error
	APIDown  bool          // the API server did not answer right after the failure
	APIBack  time.Duration // how long until it answered again; 0 when it never did within lostWait
	PodGone  bool          // the pod no longer exists
	Pod      *corev1.Pod   // the pod as it is now (nil when gone or unknown)
	Node     *corev1.Node  // the agent's node as it is now (nil when unknown)
	ExitCode int           // the exec'd command's exit code, -1 when it did not exit
	// Kubelet is why the node's kubelet did not answer /healthz through
	// the API server; nil when it answered or was not asked.
	Kubelet error
}

// lostReason says why an agent stopped answering, from the facts the
// cluster gave: the API server first (nothing else can be judged while it
// is away), then the pod, its container, its node and kubelet, and last the
// stream itself.
func lostReason(f lostFacts) (reason, detail string) {
	msg := fmt.Sprint(f.ExecErr)
	switch {
	case f.APIDown && f.APIBack > 0:
		return probes.LostAPIServer, fmt.Sprintf("the API server stopped answering (it was restarted or the connection to it broke) and answered again %s later", f.APIBack.Round(time.Second))
	case f.APIDown:
		return probes.LostAPIServer, fmt.Sprintf("the API server stopped answering and still did not answer %s later", lostWait)
	case f.PodGone:
		return probes.LostPodDeleted, "the agent pod was deleted while the run used it"
	case f.Pod != nil && f.Pod.DeletionTimestamp != nil:
		return probes.LostPodDeleted, fmt.Sprintf("the agent pod was deleted while the run used it (at %s)", f.Pod.DeletionTimestamp.UTC().Format(time.TimeOnly))
	}
	if f.Pod != nil {
		if r, d, ok := exited(f.Pod); ok {
			return r, d
		}
	}
	if f.Node != nil && notReady(f.Node) {
		c := readyCondition(f.Node)
		return probes.LostNodeDown, fmt.Sprintf("node %s is NotReady (%s: %s)", f.Node.Name, c.Reason, c.Message)
	}
	const kubelet = "the API server could not reach the node's kubelet (it is stopped or restarting, or the node is going NotReady)"
	switch {
	case dialedKubelet(msg):
		return probes.LostKubelet, kubelet
	case f.ExitCode > 128:
		return probes.LostExecStopped, fmt.Sprintf("the agent's exec process was killed by signal %d mid-request (exit code %d)", f.ExitCode-128, f.ExitCode)
	case f.Kubelet != nil:
		return probes.LostKubelet, fmt.Sprintf("%s: asked for its /healthz after the exec failed, it did not answer (%s)", kubelet, strings.Join(strings.Fields(f.Kubelet.Error()), " "))
	}
	return probes.LostStreamCut, "the exec stream broke while the agent was answering (the kubelet, the container runtime or the connection between them and the API server closed it)"
}

// exited says whether the pod's agent is no longer running, and why.
func exited(p *corev1.Pod) (reason, detail string, ok bool) {
	if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
		return probes.LostExited, fmt.Sprintf("the agent pod is %s (%s)", p.Status.Phase, orDefault(p.Status.Reason, "no reason given")), true
	}
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			return probes.LostExited, fmt.Sprintf("the agent container exited with code %d (%s)", t.ExitCode, orDefault(t.Reason, "no reason given")), true
		}
	}
	return "", "", false
}

// notReady says whether the node's Ready condition is there and not True.
func notReady(n *corev1.Node) bool {
	c := readyCondition(n)
	return c != nil && c.Status != corev1.ConditionTrue
}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// lost turns a failed exec into a into an *probes.AgentLostError after
// asking the cluster why, within lostWait. It returns err unchanged when
// the caller's context ended (that is the run stopping, not the agent).
func (m *Manager) lost(ctx context.Context, a probes.Agent, err error) error {
	if ctx.Err() != nil {
		return err
	}
	f := m.lostFacts(ctx, a, err)
	reason, detail := lostReason(f)
	return &probes.AgentLostError{Kind: a.Kind, Node: a.Node, Namespace: a.Namespace, Pod: a.Pod, Reason: reason, Detail: detail, Err: err}
}

// lostFacts reads the pod and its node, waiting (bounded) for the API server
// when it does not answer.
func (m *Manager) lostFacts(ctx context.Context, a probes.Agent, err error) lostFacts {
	f := lostFacts{ExecErr: err, ExitCode: -1}
	var ce exec.CodeExitError
	if errors.As(err, &ce) {
		f.ExitCode = ce.Code
	}
	ctx, cancel := context.WithTimeout(ctx, lostWait)
	defer cancel()
	start := time.Now()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
		p, gerr := m.kube.CoreV1().Pods(a.Namespace).Get(rctx, a.Pod, metav1.GetOptions{})
		rcancel()
		switch {
		case gerr == nil:
			f.Pod = p
		case apierrors.IsNotFound(gerr):
			f.PodGone = true
		case probes.APIUnreachable(gerr) || rctx.Err() != nil:
			f.APIDown = true
			select {
			case <-ctx.Done():
				return f
			case <-time.After(500 * time.Millisecond):
			}
			continue
		default:
			return f // a refusal, say: judge on what there is
		}
		break
	}
	if f.APIDown {
		f.APIBack = max(time.Since(start), time.Millisecond)
		return f
	}
	if n, err := m.kube.CoreV1().Nodes().Get(ctx, a.Node, metav1.GetOptions{}); err == nil {
		f.Node = n
	}
	if running(f.Pod) && f.ExitCode <= 128 && !dialedKubelet(fmt.Sprint(f.ExecErr)) && (f.Node == nil || !notReady(f.Node)) {
		// A stream that hung or broke with the node still Ready: a kubelet
		// stopped a moment ago looks the same until the node controller's
		// grace period ends, so ask the kubelet itself.
		f.Kubelet = m.kubeletHealthz(ctx, a.Node)
	}
	return f
}

// running says whether p is there, not being deleted and not exited.
func running(p *corev1.Pod) bool {
	if p == nil || p.DeletionTimestamp != nil {
		return false
	}
	_, _, gone := exited(p)
	return !gone
}

// dialedKubelet says whether an exec error is the API server failing to
// reach the kubelet.
func dialedKubelet(msg string) bool {
	return strings.Contains(msg, "error dialing backend") || strings.Contains(msg, ":10250")
}

// kubeletHealthz asks node's kubelet for /healthz through the API server,
// within 3 s: nil when it answered, or when the question could not be put
// (no REST client, or the role may not use the node proxy).
func (m *Manager) kubeletHealthz(ctx context.Context, node string) error {
	rc := m.kube.CoreV1().RESTClient()
	if r, ok := rc.(*rest.RESTClient); rc == nil || ok && r == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := rc.Get().Resource("nodes").Name(node).SubResource("proxy").Suffix("healthz").DoRaw(ctx)
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
		return nil
	}
	return err
}

// Lost says whether agent a, started by this run, is gone or no longer
// running, from the run's watch of its pods: no API request. It knows
// nothing (nil) of pods this run did not create.
func (m *Manager) Lost(a probes.Agent) error {
	if a.Err != nil || a.Pod == "" || !strings.HasSuffix(a.Pod, "-"+m.cfg.RunID) {
		return nil
	}
	m.mu.Lock()
	w := m.watches[watchKey(a.Namespace, metav1.ListOptions{LabelSelector: LabelRunID + "=" + m.cfg.RunID})]
	m.mu.Unlock()
	if w == nil || !w.inf.HasSynced() {
		return nil
	}
	p := w.get(a.Namespace, a.Pod)
	f := lostFacts{PodGone: p == nil, Pod: p, ExitCode: -1}
	if running(p) {
		return nil
	}
	reason, detail := lostReason(f)
	return &probes.AgentLostError{Kind: a.Kind, Node: a.Node, Namespace: a.Namespace, Pod: a.Pod, Reason: reason, Detail: detail,
		Err: fmt.Errorf("traffic to agent %s/%s failed, and the run's watch of its pods says: %s", a.Namespace, a.Pod, detail)}
}

var _ probes.Liveness = (*Manager)(nil)
