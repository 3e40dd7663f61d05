// Package kube holds narrow helpers over client-go that probes share: paged
// lists, the kubelet configz reader, workload resolution and discovery of the
// cluster's pod network settings. Reasoning stays in the probes; this package
// only fetches and decodes.
package kube

import (
	"context"
	"errors"
	"fmt"
	"unique"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/netsleuth/netsleuth/model"
)

// pageSize bounds each list call so large clusters are read in chunks.
const pageSize = 500

// listAll pages through a list call until the server returns no continue
// token. The first page's count of the items still to come sizes the
// result once, so a large list is not copied as it grows.
func listAll[T any](ctx context.Context, list func(context.Context, metav1.ListOptions) ([]T, metav1.ListMeta, error)) ([]T, error) {
	var out []T
	opts := metav1.ListOptions{Limit: pageSize}
	for {
		items, meta, err := list(ctx, opts)
		if err != nil {
			return nil, err
		}
		trim(items)
		if out == nil && meta.RemainingItemCount != nil {
			out = make([]T, 0, len(items)+int(max(*meta.RemainingItemCount, 0)))
		}
		out = append(out, items...)
		if meta.Continue == "" {
			return out, nil
		}
		opts.Continue = meta.Continue
	}
}

// trim drops from each object what no probe reads and a large cluster's
// lists carry for every object: the managedFields of server-side apply,
// a node's images, and most of a pod (trimPod).
func trim[T any](items []T) {
	for i := range items {
		switch o := any(&items[i]).(type) {
		case *corev1.Pod:
			trimPod(o)
		case *corev1.Node:
			// The images a node holds (tens per node) and its volumes: no
			// probe reads them.
			o.ManagedFields, o.Status.Images, o.Status.VolumesInUse, o.Status.VolumesAttached = nil, nil, nil, nil
		case metav1.Object:
			o.SetManagedFields(nil)
		}
	}
}

// keptAnnotations are the pod annotations a probe reads (Calico's address
// of the pod); every other annotation (kubectl's last-applied copy of the
// whole object, say) is dropped.
var keptAnnotations = []string{"cni.projectcalico.org/podIP"}

// trimPod drops from p what no probe reads, the bulk of a pod on a cluster
// of tens of thousands: scheduling (tolerations, affinity, priority), the
// service account, security contexts of the pod, environment and health
// checks other than readiness, every annotation but keptAnnotations, and
// the object's bookkeeping (managed fields, UID, resource version). The
// strings pods repeat (namespace, node, image, labels) are interned, so a
// list holds each once. What a probe reads stays: labels, owners, node,
// host network, containers' names, images, commands, ports, mounts and
// readiness probes, volumes, readiness gates and the status.
func trimPod(p *corev1.Pod) {
	m := &p.ObjectMeta
	m.ManagedFields, m.UID, m.ResourceVersion, m.GenerateName, m.Finalizers = nil, "", "", "", nil
	var ann map[string]string
	for _, k := range keptAnnotations {
		if v, ok := m.Annotations[k]; ok {
			if ann == nil {
				ann = map[string]string{}
			}
			ann[k] = v
		}
	}
	m.Annotations = ann
	m.Namespace = intern(m.Namespace)
	for k, v := range m.Labels {
		m.Labels[intern(k)] = intern(v)
	}
	s := &p.Spec
	s.Tolerations, s.Affinity, s.SecurityContext, s.DNSConfig, s.TopologySpreadConstraints = nil, nil, nil, nil, nil
	s.ImagePullSecrets, s.Overhead, s.SchedulingGates, s.ResourceClaims = nil, nil, nil, nil
	s.Priority, s.PriorityClassName, s.PreemptionPolicy, s.SchedulerName = nil, "", nil, ""
	s.ServiceAccountName, s.DeprecatedServiceAccount, s.AutomountServiceAccountToken = "", "", nil
	s.EnableServiceLinks, s.TerminationGracePeriodSeconds, s.ActiveDeadlineSeconds = nil, nil, nil
	s.NodeName = intern(s.NodeName)
	s.RestartPolicy, s.DNSPolicy = corev1.RestartPolicy(intern(string(s.RestartPolicy))), corev1.DNSPolicy(intern(string(s.DNSPolicy)))
	for _, cs := range [][]corev1.Container{s.InitContainers, s.Containers} {
		for i := range cs {
			c := &cs[i]
			c.Env, c.EnvFrom, c.Resources, c.ResizePolicy = nil, nil, corev1.ResourceRequirements{}, nil
			c.LivenessProbe, c.StartupProbe, c.Lifecycle = nil, nil, nil
			c.TerminationMessagePath, c.TerminationMessagePolicy, c.ImagePullPolicy = "", "", ""
			c.Name, c.Image = intern(c.Name), intern(c.Image)
		}
	}
	st := &p.Status
	st.QOSClass, st.HostIP = corev1.PodQOSClass(intern(string(st.QOSClass))), intern(st.HostIP)
	st.Phase = corev1.PodPhase(intern(string(st.Phase)))
}

// intern returns the one copy of s the process keeps for equal strings.
func intern(s string) string { return unique.Make(s).Value() }

// RBACNodes is what Nodes needs.
var RBACNodes = []model.Permission{{Resource: "nodes", Verbs: []string{"list"}}}

// Nodes lists every node.
func Nodes(ctx context.Context, c kubernetes.Interface) ([]corev1.Node, error) {
	return listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]corev1.Node, metav1.ListMeta, error) {
		l, err := c.CoreV1().Nodes().List(ctx, o)
		if err != nil {
			return nil, metav1.ListMeta{}, fmt.Errorf("listing nodes: %w", err)
		}
		return l.Items, l.ListMeta, nil
	})
}

// RBACPods is what Pods needs.
var RBACPods = []model.Permission{{Resource: "pods", Verbs: []string{"list"}}}

// Pods lists pods in namespace ns ("" for all namespaces) matching the label
// selector sel ("" for all).
func Pods(ctx context.Context, c kubernetes.Interface, ns, sel string) ([]corev1.Pod, error) {
	return listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]corev1.Pod, metav1.ListMeta, error) {
		o.LabelSelector = sel
		l, err := c.CoreV1().Pods(ns).List(ctx, o)
		if err != nil {
			return nil, metav1.ListMeta{}, fmt.Errorf("listing pods%s: %w", inNamespace(ns), err)
		}
		return l.Items, l.ListMeta, nil
	})
}

// RBACServices is what Services needs.
var RBACServices = []model.Permission{{Resource: "services", Verbs: []string{"list"}}}

// Services lists services in namespace ns ("" for all namespaces).
func Services(ctx context.Context, c kubernetes.Interface, ns string) ([]corev1.Service, error) {
	return listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]corev1.Service, metav1.ListMeta, error) {
		l, err := c.CoreV1().Services(ns).List(ctx, o)
		if err != nil {
			return nil, metav1.ListMeta{}, fmt.Errorf("listing services%s: %w", inNamespace(ns), err)
		}
		return l.Items, l.ListMeta, nil
	})
}

// RBACEndpointSlices is what EndpointSlices needs.
var RBACEndpointSlices = []model.Permission{{Group: "discovery.k8s.io", Resource: "endpointslices", Verbs: []string{"list"}}}

// EndpointSlices lists discovery.k8s.io/v1 EndpointSlices in namespace ns
// ("" for all namespaces).
func EndpointSlices(ctx context.Context, c kubernetes.Interface, ns string) ([]discoveryv1.EndpointSlice, error) {
	return listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]discoveryv1.EndpointSlice, metav1.ListMeta, error) {
		l, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, o)
		if err != nil {
			return nil, metav1.ListMeta{}, fmt.Errorf("listing endpointslices%s: %w", inNamespace(ns), err)
		}
		return l.Items, l.ListMeta, nil
	})
}

// Forbidden reports whether err (or an error it wraps) is an RBAC denial.
func Forbidden(err error) bool { return apierrors.IsForbidden(err) }

// Unavailable reports whether err means the object or endpoint is simply not
// there or not reachable through the API server (not found, forbidden,
// method not supported, service unavailable, timeout): callers treat it as
// missing evidence rather than a failed probe.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNoRESTClient) {
		return true
	}
	return apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsInternalError(err) || apierrors.IsBadRequest(err) || apierrors.IsUnauthorized(err)
}

func inNamespace(ns string) string {
	if ns == "" {
		return " in all namespaces"
	}
	return " in namespace " + ns
}
