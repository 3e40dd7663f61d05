package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/netsleuth/netsleuth/probes"
)

// pollInterval is how often a starting agent's status is read.
const pollInterval = 300 * time.Millisecond

// stuckReasons are container waiting reasons that will not resolve alone.
var stuckReasons = []string{"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
	"CreateContainerConfigError", "CreateContainerError", "RunContainerError", "CrashLoopBackOff"}

// waitRunning waits until the pod's container runs and returns its IP, or
// returns an *probes.AgentStartError naming why it will not run.
func (m *Manager) waitRunning(ctx context.Context, kind probes.AgentKind, node, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.StartTimeout)
	defer cancel()
	fail := func(reason, detail string) error {
		return &probes.AgentStartError{Kind: kind, Node: node, Pod: name, Reason: reason, Detail: detail}
	}
	var last *corev1.Pod
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		p, err := m.kube.CoreV1().Pods(m.ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = p
			if ip, done, reason, detail := podState(p); done {
				if reason != "" {
					return "", fail(reason, detail)
				}
				return ip, nil
			}
		}
		select {
		case <-ctx.Done():
			if context.Cause(ctx) != context.DeadlineExceeded || ctx.Err() == nil {
				return "", context.Cause(ctx)
			}
			return "", fail("Timeout", m.pendingDetail(context.WithoutCancel(ctx), name, last))
		case <-t.C:
		}
	}
}

// podState reads a pod's status: done with an IP when its container runs,
// done with a reason when it never will.
func podState(p *corev1.Pod) (ip string, done bool, reason, detail string) {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && slices.Contains(stuckReasons, w.Reason) {
			return "", true, w.Reason, w.Message
		}
		if t := cs.State.Terminated; t != nil {
			return "", true, "Terminated", fmt.Sprintf("container exited with code %d (%s): %s", t.ExitCode, t.Reason, t.Message)
		}
		if cs.State.Running != nil && p.Status.PodIP != "" {
			return p.Status.PodIP, true, "", ""
		}
	}
	if p.Status.Phase == corev1.PodFailed {
		return "", true, orDefault(p.Status.Reason, "Failed"), p.Status.Message
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return "", true, "Unschedulable", c.Message
		}
	}
	return "", false, "", ""
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// pendingDetail describes a pod that did not start in time from its status
// and its latest events.
func (m *Manager) pendingDetail(ctx context.Context, name string, p *corev1.Pod) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var parts []string
	if p == nil {
		parts = append(parts, "the pod was never readable")
	} else {
		parts = append(parts, "phase "+string(p.Status.Phase))
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				parts = append(parts, fmt.Sprintf("container waiting: %s %s", w.Reason, w.Message))
			}
		}
	}
	sel := fields.SelectorFromSet(fields.Set{"involvedObject.name": name}).String()
	evs, err := m.kube.CoreV1().Events(m.ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err == nil {
		items := evs.Items
		slices.SortFunc(items, func(a, b corev1.Event) int { return a.LastTimestamp.Compare(b.LastTimestamp.Time) })
		for _, e := range items[max(0, len(items)-3):] {
			parts = append(parts, fmt.Sprintf("event %s: %s", e.Reason, e.Message))
		}
	}
	return fmt.Sprintf("not running after %s: %s", m.cfg.StartTimeout, strings.Join(parts, "; "))
}
