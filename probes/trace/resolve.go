package trace

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/source"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NotFoundError is a FROM or TO the cluster does not have: a usage error.
type NotFoundError = source.NotFoundError

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
var rbacResolve = model.MergePermissions(source.RBAC, []model.Permission{
	{Resource: "services", Verbs: []string{"get", "list"}},
	{Resource: "nodes", Verbs: []string{"get"}},
})

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
			return nil, &NotFoundError{Msg: fmt.Sprintf("TO: Service %s/%s not found (kubectl -n %s get services)", s.ToNS, s.ToName, s.ToNS)}
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
	if p.FromKind == FromNode {
		if _, err := c.CoreV1().Nodes().Get(ctx, p.FromName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return &NotFoundError{Msg: fmt.Sprintf("FROM: node %s not found (kubectl get nodes)", p.FromName)}
		} else if err != nil {
			return err
		}
		p.Node = p.FromName
		return nil
	}
	pod, err := source.Pod(ctx, c, p.source())
	if err != nil {
		return prefixed("FROM", err)
	}
	p.Source, p.Node = pod, pod.Spec.NodeName
	return nil
}

func runningPod(ctx context.Context, c kubernetes.Interface, ns, name, which string) (*corev1.Pod, error) {
	pod, err := source.RunningPod(ctx, c, ns, name)
	return pod, prefixed(which, err)
}

// prefixed names the argument a not-found error is about.
func prefixed(which string, err error) error {
	var nf *NotFoundError
	if errors.As(err, &nf) {
		return &NotFoundError{Msg: which + ": " + nf.Msg}
	}
	return err
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
func IsNotFound(err error) bool { return source.IsNotFound(err) }
