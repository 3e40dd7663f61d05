package servicediag

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// podReady returns whether pod counts as a ready endpoint and since when its
// Ready condition has had its current value.
func podReady(p *corev1.Pod) (bool, time.Time) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil, c.LastTransitionTime.Time
		}
	}
	return false, time.Time{}
}

func terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// NotReadyReason explains in one phrase why pod is not a ready endpoint.
func NotReadyReason(p *corev1.Pod) string {
	switch {
	case p.DeletionTimestamp != nil:
		return "terminating"
	case terminal(p):
		return fmt.Sprintf("phase %s%s", p.Status.Phase, prefixed(": ", p.Status.Reason))
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return fmt.Sprintf("not scheduled: %s%s", c.Reason, prefixed(": ", c.Message))
		}
	}
	if p.Spec.NodeName == "" {
		return "not scheduled yet"
	}
	if r := containerReason(p, p.Status.InitContainerStatuses, true); r != "" {
		return r
	}
	if r := containerReason(p, p.Status.ContainerStatuses, false); r != "" {
		return r
	}
	for _, g := range p.Spec.ReadinessGates {
		if !conditionTrue(p, g.ConditionType) {
			return fmt.Sprintf("readiness gate %s is not True", g.ConditionType)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
			return fmt.Sprintf("Ready=%s%s%s", c.Status, prefixed(": ", c.Reason), prefixed(": ", c.Message))
		}
	}
	return fmt.Sprintf("phase %s, no Ready condition yet", orNone(string(p.Status.Phase)))
}

func containerReason(p *corev1.Pod, statuses []corev1.ContainerStatus, init bool) string {
	kind := "container"
	if init {
		kind = "init container"
	}
	for _, s := range statuses {
		switch {
		case s.State.Waiting != nil:
			return fmt.Sprintf("%s %s waiting: %s%s (restarts %d)", kind, s.Name, s.State.Waiting.Reason, prefixed(": ", s.State.Waiting.Message), s.RestartCount)
		case s.State.Terminated != nil && !(init && s.State.Terminated.ExitCode == 0):
			t := s.State.Terminated
			return fmt.Sprintf("%s %s terminated: %s, exit code %d", kind, s.Name, t.Reason, t.ExitCode)
		case !init && s.State.Running != nil && !s.Ready:
			if probe := readinessProbe(p, s.Name); probe != "" {
				return fmt.Sprintf("container %s running but its readiness probe (%s) is failing", s.Name, probe)
			}
			if s.Started != nil && !*s.Started {
				return fmt.Sprintf("container %s running, startup probe not yet passed", s.Name)
			}
			return fmt.Sprintf("container %s running, not ready", s.Name)
		}
	}
	return ""
}

func readinessProbe(p *corev1.Pod, container string) string {
	for _, c := range p.Spec.Containers {
		if c.Name != container || c.ReadinessProbe == nil {
			continue
		}
		h := c.ReadinessProbe.ProbeHandler
		switch {
		case h.HTTPGet != nil:
			return fmt.Sprintf("httpGet %s:%s", h.HTTPGet.Path, h.HTTPGet.Port.String())
		case h.TCPSocket != nil:
			return "tcpSocket " + h.TCPSocket.Port.String()
		case h.GRPC != nil:
			return fmt.Sprintf("grpc %d", h.GRPC.Port)
		case h.Exec != nil:
			return "exec " + strings.Join(h.Exec.Command, " ")
		}
		return "probe"
	}
	return ""
}

func conditionTrue(p *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nearMiss is a group of pods that differ from a selector in one label.
type nearMiss struct {
	key, want, have string // have == "" means the label is missing
	pods            []string
}

func (n nearMiss) String() string {
	if n.have == "" {
		return fmt.Sprintf("pod(s) %s lack label %s (selector wants %s=%s)", strings.Join(n.pods, ", "), n.key, n.key, n.want)
	}
	return fmt.Sprintf("pod(s) %s have %s=%s (selector wants %s=%s)", strings.Join(n.pods, ", "), n.key, n.have, n.key, n.want)
}

// NearMisses groups the pods whose labels differ from selector in exactly
// one key/value, at most max groups, largest first.
func nearMisses(selector map[string]string, pods []*corev1.Pod, max int) []nearMiss {
	byDiff := map[[2]string]*nearMiss{}
	for _, p := range pods {
		var diff *[2]string
		n := 0
		for k, v := range selector {
			if have, ok := p.Labels[k]; !ok || have != v {
				n++
				d := [2]string{k, have}
				diff = &d
			}
		}
		if n != 1 {
			continue
		}
		g, ok := byDiff[*diff]
		if !ok {
			g = &nearMiss{key: diff[0], want: selector[diff[0]], have: diff[1]}
			byDiff[*diff] = g
		}
		g.pods = append(g.pods, p.Name)
	}
	out := make([]nearMiss, 0, len(byDiff))
	for _, g := range byDiff {
		sort.Strings(g.pods)
		if len(g.pods) > 3 {
			g.pods = append(g.pods[:3], fmt.Sprintf("and %d more", len(g.pods)-3))
		}
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].pods) != len(out[j].pods) {
			return len(out[i].pods) > len(out[j].pods)
		}
		return out[i].String() < out[j].String()
	})
	if len(out) > max {
		out = out[:max]
	}
	return out
}

func prefixed(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
