package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
)

// EphemeralName is the name of the run's ephemeral container in a user's pod.
func EphemeralName(runID string) string { return "netsleuth-" + runID }

// containerFor is the container Exec runs in for agent a.
func (m *Manager) containerFor(a probes.Agent) string {
	if a.Kind == AgentEphemeral {
		return EphemeralName(m.cfg.RunID)
	}
	return containerName
}

// EphemeralContainer is the agent as an ephemeral container: restricted
// PodSecurity, no listeners, exiting on its own after lifetime because
// Kubernetes cannot remove an ephemeral container from a pod.
func (m *Manager) EphemeralContainer(lifetime time.Duration) corev1.EphemeralContainer {
	return corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: EphemeralName(m.cfg.RunID), Image: m.cfg.Image, ImagePullPolicy: m.cfg.PullPolicy,
		Command: []string{Binary, "agent", "serve", "--listen=false", "--exit-after=" + lifetime.Round(time.Second).String()},
		Env:     agentEnv(),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsNonRoot:             ptr.To(true),
			RunAsUser:                ptr.To[int64](65534),
			RunAsGroup:               ptr.To[int64](65534),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}}
}

// RBACEphemeral is what StartEphemeral needs: the pod read and watched, the
// container added through the ephemeralcontainers subresource (an update),
// and exec into it.
var RBACEphemeral = []model.Permission{
	{Resource: "pods", Verbs: []string{"get", "list", "watch"}},
	{Resource: "pods", Subresource: "ephemeralcontainers", Verbs: []string{"update"}},
	{Resource: "pods", Subresource: "exec", Verbs: []string{"create"}},
}

// StartEphemeral adds the agent as an ephemeral container to the pod s and
// waits until it runs. Needs update on pods/ephemeralcontainers.
func (m *Manager) StartEphemeral(ctx context.Context, s StandInFor, lifetime time.Duration) probes.Agent {
	name := EphemeralName(m.cfg.RunID)
	a := probes.Agent{Kind: AgentEphemeral, Node: s.Node, Namespace: s.Namespace, Pod: s.Pod}
	pods := m.kube.CoreV1().Pods(s.Namespace)
	p, err := pods.Get(ctx, s.Pod, metav1.GetOptions{})
	if err != nil {
		a.Err = fmt.Errorf("reading pod %s/%s: %w", s.Namespace, s.Pod, err)
		return a
	}
	if !slices.ContainsFunc(p.Spec.EphemeralContainers, func(c corev1.EphemeralContainer) bool { return c.Name == name }) {
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, m.EphemeralContainer(lifetime))
		_, err = pods.UpdateEphemeralContainers(ctx, s.Pod, p, metav1.UpdateOptions{})
		switch {
		case err != nil && apierrors.IsForbidden(err) && strings.Contains(err.Error(), "PodSecurity"):
			a.Err = &probes.AgentStartError{Kind: a.Kind, Node: s.Node, Pod: s.Pod, Reason: "PodSecurity", Detail: err.Error()}
			return a
		case err != nil:
			a.Err = fmt.Errorf("adding ephemeral container %s to pod %s/%s (needs update on pods/ephemeralcontainers): %w", name, s.Namespace, s.Pod, err)
			return a
		}
	}
	a.IP, a.Err = m.waitState(ctx, a, false, func(p *corev1.Pod) (string, bool, string, string) { return ephemeralState(p, name) })
	return a
}

// ephemeralState reads the ephemeral container's status like podState.
func ephemeralState(p *corev1.Pod, name string) (ip string, done bool, reason, detail string) {
	for _, cs := range p.Status.EphemeralContainerStatuses {
		if cs.Name != name {
			continue
		}
		if w := cs.State.Waiting; w != nil && slices.Contains(stuckReasons, w.Reason) {
			return "", true, w.Reason, w.Message
		}
		if t := cs.State.Terminated; t != nil {
			return "", true, "Terminated", fmt.Sprintf("ephemeral container exited with code %d (%s): %s", t.ExitCode, t.Reason, t.Message)
		}
		if cs.State.Running != nil && p.Status.PodIP != "" {
			return p.Status.PodIP, true, "", ""
		}
	}
	return "", false, "", ""
}
