// Package source is the user's own workload a probe asks its question from
// (--from): "namespace/pod" or "namespace/<kind>/name", read as one running
// pod of it. The external, pod-to-service, policy and trace probes share it,
// and send their live traffic with that pod's identity (its namespace,
// labels and node) through agent.StartSender.
package source

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
)

// Ref names a source as the user wrote it.
type Ref struct {
	Namespace, Name string
	// Kind is "" for a pod, else Deployment, StatefulSet, DaemonSet or
	// ReplicaSet: one of its running pods is the source.
	Kind string
}

// kinds maps the words --from takes for a workload to its kind.
var kinds = map[string]string{"deployment": "Deployment", "deploy": "Deployment", "statefulset": "StatefulSet", "sts": "StatefulSet",
	"daemonset": "DaemonSet", "ds": "DaemonSet", "replicaset": "ReplicaSet", "rs": "ReplicaSet"}

// Shape is what Parse takes, for messages.
const Shape = "namespace/pod or namespace/deployment/name (also statefulset, daemonset, replicaset)"

// Parse reads v as namespace/pod or namespace/<kind>/name, with Kubernetes
// names. "node/NAME" is a node, not a workload (trace reads it); IPs,
// CIDRs and wildcards are no workload either.
func Parse(v string) (Ref, error) {
	parts := strings.Split(v, "/")
	bad := errors.New("is not " + Shape)
	if len(parts) < 2 || len(validation.IsDNS1123Label(parts[0])) > 0 || len(validation.IsDNS1123Subdomain(parts[len(parts)-1])) > 0 {
		return Ref{}, bad
	}
	switch {
	case len(parts) == 2 && parts[0] != "node":
		return Ref{Namespace: parts[0], Name: parts[1]}, nil
	case len(parts) == 3 && kinds[strings.ToLower(parts[1])] != "":
		return Ref{Namespace: parts[0], Kind: kinds[strings.ToLower(parts[1])], Name: parts[2]}, nil
	}
	return Ref{}, bad
}

// Check validates --from for the probes that ask from a workload
// (model.Input.Check).
func Check(v string) error {
	_, err := Parse(v)
	return err
}

// Given is the source --from names for a probe that asks from a workload;
// ok is false when there is none (no --from, or one that names an IP or a
// matrix, which are the policy probe's alone).
func Given(o probes.Options) (Ref, bool) {
	r, err := Parse(o.From)
	return r, o.From != "" && err == nil
}

// Preflight checks that the --from of o, when it names a workload, has a
// running pod: a *probes.InputError when it does not.
func Preflight(ctx context.Context, c kubernetes.Interface, o probes.Options) error {
	r, ok := Given(o)
	if !ok {
		return nil
	}
	_, err := Pod(ctx, c, r)
	if IsNotFound(err) {
		return &probes.InputError{Flag: "from", Err: err}
	}
	return err
}

// String renders r as the user wrote it.
func (r Ref) String() string {
	if r.Kind == "" {
		return r.Namespace + "/" + r.Name
	}
	return r.Namespace + "/" + strings.ToLower(r.Kind) + "/" + r.Name
}

// NotFoundError says the source (or a destination) names no running pod:
// a usage error, found before anything is created.
type NotFoundError struct{ Msg string }

func (e *NotFoundError) Error() string { return e.Msg }

// IsNotFound reports whether err is a *NotFoundError.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

// RBAC is what Pod reads: the pod, or the workload and the pods it selects.
var RBAC = []model.Permission{
	{Resource: "pods", Verbs: []string{"get", "list"}},
	{Group: "apps", Resource: "deployments", Verbs: []string{"get"}},
	{Group: "apps", Resource: "statefulsets", Verbs: []string{"get"}},
	{Group: "apps", Resource: "daemonsets", Verbs: []string{"get"}},
	{Group: "apps", Resource: "replicasets", Verbs: []string{"get"}},
}

// Pod returns the running pod r names: the pod itself, or the first
// running pod (by name) its workload selects. A pod or workload that does
// not exist or has no running pod is a *NotFoundError.
func Pod(ctx context.Context, c kubernetes.Interface, r Ref) (*corev1.Pod, error) {
	if r.Kind == "" {
		return RunningPod(ctx, c, r.Namespace, r.Name)
	}
	sel, err := selector(ctx, c, r)
	if apierrors.IsNotFound(err) {
		return nil, &NotFoundError{fmt.Sprintf("%s %s/%s not found (kubectl -n %s get %ss)", r.Kind, r.Namespace, r.Name, r.Namespace, strings.ToLower(r.Kind))}
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s %s/%s: %w", r.Kind, r.Namespace, r.Name, err)
	}
	ls, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, fmt.Errorf("the selector of %s %s/%s: %w", r.Kind, r.Namespace, r.Name, err)
	}
	pods, err := c.CoreV1().Pods(r.Namespace).List(ctx, metav1.ListOptions{LabelSelector: ls.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s %s/%s: %w", r.Kind, r.Namespace, r.Name, err)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	for i := range pods.Items {
		if p := &pods.Items[i]; running(p) {
			return p, nil
		}
	}
	return nil, &NotFoundError{fmt.Sprintf("%s %s/%s has no running pod (kubectl -n %s get pods -l %s)", r.Kind, r.Namespace, r.Name, r.Namespace, ls)}
}

func selector(ctx context.Context, c kubernetes.Interface, r Ref) (*metav1.LabelSelector, error) {
	apps := c.AppsV1()
	var sel *metav1.LabelSelector
	var err error
	switch r.Kind {
	case "Deployment":
		var d *appsv1.Deployment
		if d, err = apps.Deployments(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{}); err == nil {
			sel = d.Spec.Selector
		}
	case "StatefulSet":
		var s *appsv1.StatefulSet
		if s, err = apps.StatefulSets(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{}); err == nil {
			sel = s.Spec.Selector
		}
	case "DaemonSet":
		var d *appsv1.DaemonSet
		if d, err = apps.DaemonSets(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{}); err == nil {
			sel = d.Spec.Selector
		}
	default:
		var s *appsv1.ReplicaSet
		if s, err = apps.ReplicaSets(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{}); err == nil {
			sel = s.Spec.Selector
		}
	}
	return sel, err
}

// RunningPod returns pod ns/name when it runs with an IP on a node.
func RunningPod(ctx context.Context, c kubernetes.Interface, ns, name string) (*corev1.Pod, error) {
	p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, &NotFoundError{fmt.Sprintf("pod %s/%s not found (kubectl -n %s get pods)", ns, name, ns)}
	case err != nil:
		return nil, fmt.Errorf("reading pod %s/%s: %w", ns, name, err)
	case !running(p):
		return nil, &NotFoundError{fmt.Sprintf("pod %s/%s is %s, not running with an IP", ns, name, p.Status.Phase)}
	}
	return p, nil
}

func running(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.Spec.NodeName != ""
}

// For is the identity a sender takes for pod p.
func For(p *corev1.Pod) agent.StandInFor {
	return agent.StandInFor{Namespace: p.Namespace, Pod: p.Name, Node: p.Spec.NodeName, Labels: p.Labels}
}

// Start starts the agent that sends as p: a stand-in with its labels on its
// node, or with --policy-live=ephemeral a container in p itself. An RBAC
// denial is an error; a sender that did not start has Err set (see
// agent.NotStarted). A pod on the host network has no identity of its own to
// lend: its traffic is its node's.
func Start(ctx context.Context, env *probes.Env, rec probes.Recorder, p *corev1.Pod) (probes.Agent, error) {
	if p.Spec.HostNetwork {
		return probes.Agent{}, fmt.Errorf("pod %s/%s uses the host network, so its traffic is node %s's: ask from the node (netsleuth trace node/%s TO)", p.Namespace, p.Name, p.Spec.NodeName, p.Spec.NodeName)
	}
	return agent.StartSender(ctx, env, rec, For(p), env.Options.PolicyLive == "ephemeral")
}
