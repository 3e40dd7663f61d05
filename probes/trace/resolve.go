package trace

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/netsleuth/netsleuth/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NotFoundError is a FROM or TO the cluster does not have: a usage error.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return e.What }

// Plan is a trace question resolved against the cluster: the source pod
// (or node) and what the destination is.
type Plan struct {
	Spec
	Source  *corev1.Pod // nil when the source is a node
	Node    string      // the source's node
	DestPod *corev1.Pod
	Service *corev1.Service
}

// Resolve finds the source and destination objects. A missing or unusable
// one is a *NotFoundError.
// rbacResolve is what Resolve and Classify read: the Service, node and pod
// named, the workloads a pod is picked from, and the pods and Services an
// address may belong to.
var rbacResolve = []model.Permission{
	{Resource: "services", Verbs: []string{"get", "list"}},
	{Resource: "nodes", Verbs: []string{"get"}},
	{Resource: "pods", Verbs: []string{"get", "list"}},
	{Group: "apps", Resource: "deployments", Verbs: []string{"get"}},
	{Group: "apps", Resource: "statefulsets", Verbs: []string{"get"}},
	{Group: "apps", Resource: "daemonsets", Verbs: []string{"get"}},
	{Group: "apps", Resource: "replicasets", Verbs: []string{"get"}},
}

func Resolve(ctx context.Context, c kubernetes.Interface, s Spec) (*Plan, error) {
	p := &Plan{Spec: s}
	if err := p.resolveFrom(ctx, c); err != nil {
		return nil, err
	}
	switch s.ToKind {
	case ToPod:
		pod, err := runningPod(ctx, c, s.ToNS, s.ToName, "TO")
		if err != nil {
			return nil, err
		}
		p.DestPod, p.ToAddr = pod, netip.MustParseAddr(pod.Status.PodIP)
	case ToService:
		svc, err := c.CoreV1().Services(s.ToNS).Get(ctx, s.ToName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, &NotFoundError{fmt.Sprintf("TO: Service %s/%s not found (kubectl -n %s get services)", s.ToNS, s.ToName, s.ToNS)}
		}
		if err != nil {
			return nil, err
		}
		p.Service = svc
	case ToAddress:
		if err := p.Classify(ctx, c); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Plan) resolveFrom(ctx context.Context, c kubernetes.Interface) error {
	switch p.FromKind {
	case FromNode:
		if _, err := c.CoreV1().Nodes().Get(ctx, p.FromName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return &NotFoundError{fmt.Sprintf("FROM: node %s not found (kubectl get nodes)", p.FromName)}
		} else if err != nil {
			return err
		}
		p.Node = p.FromName
		return nil
	case FromWorkload:
		pod, err := workloadPod(ctx, c, p.FromNS, p.WorkloadKind, p.FromName)
		if err != nil {
			return err
		}
		p.Source, p.Node = pod, pod.Spec.NodeName
		return nil
	}
	pod, err := runningPod(ctx, c, p.FromNS, p.FromName, "FROM")
	if err != nil {
		return err
	}
	p.Source, p.Node = pod, pod.Spec.NodeName
	return nil
}

func runningPod(ctx context.Context, c kubernetes.Interface, ns, name, which string) (*corev1.Pod, error) {
	pod, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, &NotFoundError{fmt.Sprintf("%s: pod %s/%s not found (kubectl -n %s get pods)", which, ns, name, ns)}
	case err != nil:
		return nil, err
	case pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" || pod.Spec.NodeName == "":
		return nil, &NotFoundError{fmt.Sprintf("%s: pod %s/%s is %s, not running with an IP", which, ns, name, pod.Status.Phase)}
	}
	return pod, nil
}

// workloadPod picks the first running pod (by name) of a workload.
func workloadPod(ctx context.Context, c kubernetes.Interface, ns, kind, name string) (*corev1.Pod, error) {
	var sel *metav1.LabelSelector
	var err error
	switch kind {
	case "Deployment":
		var d *appsv1.Deployment
		if d, err = c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			sel = d.Spec.Selector
		}
	case "StatefulSet":
		var s *appsv1.StatefulSet
		if s, err = c.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			sel = s.Spec.Selector
		}
	case "DaemonSet":
		var d *appsv1.DaemonSet
		if d, err = c.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			sel = d.Spec.Selector
		}
	case "ReplicaSet":
		var r *appsv1.ReplicaSet
		if r, err = c.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			sel = r.Spec.Selector
		}
	}
	if apierrors.IsNotFound(err) {
		return nil, &NotFoundError{fmt.Sprintf("FROM: %s %s/%s not found", kind, ns, name)}
	}
	if err != nil {
		return nil, err
	}
	ls, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, err
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: ls.String()})
	if err != nil {
		return nil, err
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	for i := range pods.Items {
		if p := &pods.Items[i]; p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
			return p, nil
		}
	}
	return nil, &NotFoundError{fmt.Sprintf("FROM: %s %s/%s has no running pod", kind, ns, name)}
}

// Classify says what an address destination is: a Service's ClusterIP, a
// pod, or an address outside the cluster's objects.
func (p *Plan) Classify(ctx context.Context, c kubernetes.Interface) error {
	a := p.ToAddr.String()
	pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.podIP=" + a})
	if err != nil && !apierrors.IsForbidden(err) {
		return err
	}
	if err == nil {
		for i := range pods.Items {
			if pd := &pods.Items[i]; pd.Status.Phase == corev1.PodRunning && !pd.Spec.HostNetwork {
				p.DestPod, p.ToKind = pd, ToPod
				return nil
			}
		}
	}
	svcs, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		if apierrors.IsForbidden(err) {
			return nil
		}
		return err
	}
	for i := range svcs.Items {
		for _, ip := range svcs.Items[i].Spec.ClusterIPs {
			if ip == a {
				p.Service, p.ToKind = &svcs.Items[i], ToService
				return nil
			}
		}
	}
	return nil
}

// IsNotFound reports whether err is a *NotFoundError.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}
