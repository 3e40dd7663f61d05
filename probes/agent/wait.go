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

// pollInterval is how often DeleteStandIns rereads the stand-ins.
const pollInterval = 300 * time.Millisecond

// stuckReasons are container waiting reasons that will not resolve alone.
var stuckReasons = []string{"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
	"CreateContainerConfigError", "CreateContainerError", "RunContainerError", "CrashLoopBackOff"}

// waitState follows a's pod until state says it is done (the IP when it
// runs, or a reason it never will), within the start timeout. The pods this
// run created share one watch per namespace; any other pod (one that was
// already there, an ephemeral container's target) gets a watch of its own.
func (m *Manager) waitState(ctx context.Context, a probes.Agent, created bool, state func(*corev1.Pod) (string, bool, string, string)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.StartTimeout)
	defer cancel()
	w := m.watch(a.Namespace, metav1.ListOptions{LabelSelector: LabelRunID + "=" + m.cfg.RunID})
	if !created {
		w = m.watch(a.Namespace, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", a.Pod).String()})
	}
	var last *corev1.Pod
	var ip, reason, detail string
	err := w.until(ctx, func() bool {
		p := w.get(a.Namespace, a.Pod)
		if p == nil {
			return false
		}
		last = p
		var done bool
		ip, done, reason, detail = state(p)
		return done
	})
	switch {
	case err == nil && reason != "":
		return "", &probes.AgentStartError{Kind: a.Kind, Node: a.Node, Pod: a.Pod, Reason: reason, Detail: detail}
	case err == nil:
		return ip, nil
	case ctx.Err() == context.DeadlineExceeded && context.Cause(ctx) == context.DeadlineExceeded:
		return "", &probes.AgentStartError{Kind: a.Kind, Node: a.Node, Pod: a.Pod, Reason: "Timeout",
			Detail: m.pendingDetail(context.WithoutCancel(ctx), a.Namespace, a.Pod, last)}
	default:
		return "", err
	}
}

// watch returns the run's watch of the pods in ns matching sel, started on
// first use and stopped by Close.
func (m *Manager) watch(ns string, sel metav1.ListOptions) *podWatch {
	key := watchKey(ns, sel)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watches == nil {
		m.watches = map[string]*podWatch{}
	}
	w, ok := m.watches[key]
	if !ok {
		w = newPodWatch(m.kube, ns, sel)
		m.watches[key] = w
	}
	return w
}

func watchKey(ns string, sel metav1.ListOptions) string {
	return ns + "|" + sel.LabelSelector + "|" + sel.FieldSelector
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
func (m *Manager) pendingDetail(ctx context.Context, ns, name string, p *corev1.Pod) string {
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
	evs, err := m.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err == nil {
		items := evs.Items
		slices.SortFunc(items, func(a, b corev1.Event) int { return a.LastTimestamp.Compare(b.LastTimestamp.Time) })
		for _, e := range items[max(0, len(items)-3):] {
			parts = append(parts, fmt.Sprintf("event %s: %s", e.Reason, e.Message))
		}
	}
	return fmt.Sprintf("not running after %s: %s", m.cfg.StartTimeout, strings.Join(parts, "; "))
}
