package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
)

// Agents that send traffic as a user's pod would: a stand-in pod next to it,
// or an ephemeral container inside it.
const (
	// AgentStandIn is a restricted pod in the user's pod's namespace, with
	// its labels, on its node, that never becomes ready.
	AgentStandIn probes.AgentKind = "standin"
	// AgentEphemeral is an ephemeral container added to the user's pod: it
	// shares the pod's network namespace, so its traffic is the pod's.
	AgentEphemeral probes.AgentKind = "ephemeral"
)

// NeverReadyPort is the port the stand-in's readiness probe knocks on;
// nothing listens there (the stand-in opens no listener), so the pod is never
// ready and no Service sends it traffic.
const NeverReadyPort = 1

// StandInFor describes the pod an agent stands in for.
type StandInFor struct {
	Namespace, Pod, Node string
	Labels               map[string]string
}

// StandInAgents is what the Manager offers beyond probes.Agents: agents that
// send traffic as a given pod. Probes reach it by asserting env.Agents.
type StandInAgents interface {
	StartStandIn(ctx context.Context, s StandInFor) probes.Agent
	StartEphemeral(ctx context.Context, s StandInFor, lifetime time.Duration) probes.Agent
}

var _ StandInAgents = (*Manager)(nil)

// StandInLabels are the stand-in's labels: the user pod's, plus netsleuth's
// own (managed-by, run-id, agent kind), which win on a clash.
func StandInLabels(runID string, podLabels map[string]string) map[string]string {
	l := maps.Clone(podLabels)
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, labels(runID, AgentStandIn))
	return l
}

// AddedLabelKeys are the label keys netsleuth adds to a stand-in.
func AddedLabelKeys() []string { return []string{LabelManagedBy, LabelRunID, LabelKind} }

// StandInSelector selects the stand-ins of one run, in any namespace.
func StandInSelector(runID string) string {
	return fmt.Sprintf("%s=%s,%s=%s,%s=%s", LabelManagedBy, ManagedBy, LabelRunID, runID, LabelKind, AgentStandIn)
}

// standInName is the stand-in's pod name: derived from the pod it stands
// in for, short enough for a DNS label.
func standInName(runID, pod string) string {
	p := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(pod), "-"), "-")
	suffix := "-" + runID
	name := "netsleuth-as-" + p
	if len(name)+len(suffix) > 63 {
		name = strings.TrimRight(name[:63-len(suffix)], "-")
	}
	return name + suffix
}

// StandInPod returns the stand-in for s: restricted PodSecurity, the
// agent's main process without listeners, a readiness probe that never
// succeeds, and a controller reference to owner (the run's agent namespace)
// so that no ReplicaSet or StatefulSet selecting those labels adopts it and
// the garbage collector deletes it with that namespace.
func (m *Manager) StandInPod(s StandInFor, owner *corev1.Namespace) *corev1.Pod {
	pod := m.podFor(probes.AgentPod, s.Node)
	pod.Name = standInName(m.cfg.RunID, s.Pod)
	pod.Namespace = s.Namespace
	pod.Labels = StandInLabels(m.cfg.RunID, s.Labels)
	pod.Annotations = map[string]string{"netsleuth.dev/stands-in-for": s.Namespace + "/" + s.Pod}
	if owner != nil {
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Namespace", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}}
	}
	c := &pod.Spec.Containers[0]
	c.Command = append(c.Command, "--listen=false")
	c.Ports = nil
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(NeverReadyPort)}},
		PeriodSeconds: 60, FailureThreshold: 1, TimeoutSeconds: 1,
	}
	return pod
}

// RBACStandIn is what stand-ins need: the run's namespace made and read (the
// stand-in's owner), the stand-in created in the source pod's namespace,
// watched until it has an IP, exec into it, and deleted.
var RBACStandIn = model.MergePermissions(rbacManager, []model.Permission{
	{Resource: "namespaces", Verbs: []string{"get"}},
	{Resource: "pods", Verbs: []string{"create", "delete", "get", "list"}},
	{Resource: "pods", Subresource: "exec", Verbs: []string{"create"}},
})

// StartStandIn creates the stand-in for s, or finds the one another probe
// of the run created, and waits until it runs (it never becomes ready).
// Close deletes it with the run.
func (m *Manager) StartStandIn(ctx context.Context, s StandInFor) probes.Agent {
	a := probes.Agent{Kind: AgentStandIn, Node: s.Node, Namespace: s.Namespace, Pod: standInName(m.cfg.RunID, s.Pod)}
	if err := m.ensureNamespace(ctx); err != nil {
		a.Err = err
		return a
	}
	owner, err := m.kube.CoreV1().Namespaces().Get(ctx, m.ns, metav1.GetOptions{})
	if err != nil {
		a.Err = fmt.Errorf("reading the agent namespace %s to own the stand-in: %w", m.ns, err)
		return a
	}
	pod := m.StandInPod(s, owner)
	m.mu.Lock()
	m.standIns[s.Namespace] = true // before the create: a cut-short create may still have made it
	m.mu.Unlock()
	_, err = m.kube.CoreV1().Pods(s.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
	case err != nil && apierrors.IsForbidden(err) && strings.Contains(err.Error(), "PodSecurity"):
		a.Err = &probes.AgentStartError{Kind: a.Kind, Node: s.Node, Pod: pod.Name, Reason: "PodSecurity", Detail: err.Error()}
		return a
	case err != nil:
		a.Err = fmt.Errorf("creating stand-in pod %s/%s: %w", s.Namespace, pod.Name, err)
		return a
	}
	a.IP, a.Err = m.waitState(ctx, a, err == nil, podState)
	return a
}

// deleteStandIns deletes the run's stand-ins in every namespace it put one in.
func (m *Manager) deleteStandIns(ctx context.Context) error {
	m.mu.Lock()
	nss := slices.Sorted(maps.Keys(m.standIns))
	m.mu.Unlock()
	var err error
	for _, ns := range nss {
		err = errors.Join(err, DeleteStandIns(ctx, m.kube, ns, m.cfg.RunID))
	}
	return err
}

// DeleteStandIns deletes the stand-ins of run runID in namespace ns and
// waits (within ctx) until they are gone.
func DeleteStandIns(ctx context.Context, kube kubernetes.Interface, ns, runID string) error {
	sel := metav1.ListOptions{LabelSelector: StandInSelector(runID)}
	zero := metav1.DeleteOptions{GracePeriodSeconds: new(int64)}
	l, err := kube.CoreV1().Pods(ns).List(ctx, sel)
	if err != nil {
		return fmt.Errorf("listing stand-in pods in %s (%s): %w", ns, sel.LabelSelector, err)
	}
	for _, p := range l.Items {
		if err := kube.CoreV1().Pods(ns).Delete(ctx, p.Name, zero); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting stand-in pod %s/%s: %w", ns, p.Name, err)
		}
	}
	for {
		l, err := kube.CoreV1().Pods(ns).List(ctx, sel)
		if err == nil && len(l.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stand-in pods in %s still exist: %w", ns, context.Cause(ctx))
		case <-time.After(pollInterval):
		}
	}
}

// RBACSender is what StartSender needs, either way it sends.
var RBACSender = model.MergePermissions(RBACStandIn, RBACEphemeral)

// StartSender starts the agent that sends traffic as the pod who: a
// stand-in with its labels on its node, or with ephemeral a container added
// to the pod itself. Probes of one run asking for the same pod share one
// sender, deleted (or, for an ephemeral container, exiting) after the run.
// An RBAC denial is returned as an error, so the runner names the
// permission; a sender that did not start has Err set.
func StartSender(ctx context.Context, env *probes.Env, rec probes.Recorder, who StandInFor, ephemeral bool) (probes.Agent, error) {
	if env.Agents == nil {
		return probes.Agent{}, ErrNoAgents
	}
	sa, ok := env.Agents.(StandInAgents)
	if !ok {
		return probes.Agent{}, errors.New("this run's agents cannot send as another pod")
	}
	var a probes.Agent
	if ephemeral {
		lifetime := 5 * time.Minute
		if d, ok := ctx.Deadline(); ok {
			lifetime = max(time.Until(d)+30*time.Second, time.Minute)
		}
		rec.Stage(fmt.Sprintf("adding ephemeral container %s to pod %s/%s to send as the pod itself (it exits after %s)",
			EphemeralName(env.RunID), who.Namespace, who.Pod, lifetime.Round(time.Second)))
		a = sa.StartEphemeral(ctx, who, lifetime)
	} else {
		rec.Stage(fmt.Sprintf("starting a stand-in for %s/%s on node %s (its labels, never ready)", who.Namespace, who.Pod, who.Node))
		a = sa.StartStandIn(ctx, who)
	}
	_, _, err := Started([]probes.Agent{a})
	return a, err
}
