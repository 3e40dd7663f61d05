package kube

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/netsleuth/netsleuth/model"
)

// fetchTimeout bounds one shared read: it runs on a context of its own, so
// one probe's deadline does not poison the read for the others.
const fetchTimeout = 2 * time.Minute

// configzParallel bounds the concurrent configz reads.
const configzParallel = 16

// Snapshot is one run's read of the cluster: every list is fetched once, on
// first use, paginated, and shared by every probe of the run; each node's
// configz and each named object likewise. It is safe for concurrent use.
//
// Its scope is the run's --namespace ("" for all): a list in scope is read
// once and filtered; a namespace outside it (kube-system, for DNS) is read
// on its own.
type Snapshot struct {
	c     kubernetes.Interface
	scope string

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	once sync.Once
	done chan struct{}
	val  any
	err  error
}

// NewSnapshot returns an empty snapshot of c scoped to namespace scope.
func NewSnapshot(c kubernetes.Interface, scope string) *Snapshot {
	return &Snapshot{c: c, scope: scope, entries: map[string]*entry{}}
}

// Client is the client the snapshot reads with.
func (s *Snapshot) Client() kubernetes.Interface { return s.c }

// get returns the memoized value of key, fetching it once. A caller whose ctx
// ends stops waiting; the fetch itself goes on for the others.
func (s *Snapshot) get(ctx context.Context, key string, fetch func(context.Context) (any, error)) (any, error) {
	s.mu.Lock()
	e, ok := s.entries[key]
	if !ok {
		e = &entry{done: make(chan struct{})}
		s.entries[key] = e
	}
	s.mu.Unlock()
	e.once.Do(func() {
		go func() {
			defer close(e.done)
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
			defer cancel()
			e.val, e.err = fetch(fctx)
		}()
	})
	select {
	case <-e.done:
		return e.val, e.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// listNS is the namespace a list of ns is read from: the scope's (or all)
// when ns is in scope, else ns alone.
func (s *Snapshot) listNS(ns string) string {
	if s.scope == "" || ns == "" || ns == s.scope {
		return s.scope
	}
	return ns
}

// listKey is the snapshot's key for the list of kind read from namespace
// from ("" for every namespace).
func listKey(kind, from string) string { return kind + "/" + from }

// items reads a namespaced list through the snapshot and keeps those of ns
// ("" for every namespace in scope).
func items[T any](ctx context.Context, s *Snapshot, kind, ns string, list func(context.Context, string) ([]T, error), nsOf func(*T) string) ([]T, error) {
	from := s.listNS(ns)
	v, err := s.get(ctx, listKey(kind, from), func(ctx context.Context) (any, error) { return list(ctx, from) })
	if err != nil {
		return nil, err
	}
	all := v.([]T)
	if ns == "" || ns == from {
		return all, nil
	}
	var out []T
	for i := range all {
		if nsOf(&all[i]) == ns {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// Nodes lists every node.
func (s *Snapshot) Nodes(ctx context.Context) ([]corev1.Node, error) {
	v, err := s.get(ctx, "nodes", func(ctx context.Context) (any, error) { return Nodes(ctx, s.c) })
	if err != nil {
		return nil, err
	}
	return v.([]corev1.Node), nil
}

// Pods lists the pods of ns ("" for every namespace in scope).
func (s *Snapshot) Pods(ctx context.Context, ns string) ([]corev1.Pod, error) {
	return items(ctx, s, "pods", ns, func(ctx context.Context, ns string) ([]corev1.Pod, error) { return Pods(ctx, s.c, ns, "") },
		func(p *corev1.Pod) string { return p.Namespace })
}

// PodsMatching lists the pods of ns whose labels match selector.
func (s *Snapshot) PodsMatching(ctx context.Context, ns, selector string) ([]corev1.Pod, error) {
	sel, err := labels.Parse(selector)
	if err != nil {
		return nil, fmt.Errorf("label selector %q: %w", selector, err)
	}
	all, err := s.Pods(ctx, ns)
	if err != nil {
		return nil, err
	}
	return matching(all, sel, func(p *corev1.Pod) map[string]string { return p.Labels }), nil
}

// Services lists the Services of ns ("" for every namespace in scope).
func (s *Snapshot) Services(ctx context.Context, ns string) ([]corev1.Service, error) {
	return items(ctx, s, "services", ns, func(ctx context.Context, ns string) ([]corev1.Service, error) { return Services(ctx, s.c, ns) },
		func(x *corev1.Service) string { return x.Namespace })
}

// EndpointSlices lists the EndpointSlices of ns ("" for every namespace in scope).
func (s *Snapshot) EndpointSlices(ctx context.Context, ns string) ([]discoveryv1.EndpointSlice, error) {
	return items(ctx, s, "endpointslices", ns, func(ctx context.Context, ns string) ([]discoveryv1.EndpointSlice, error) {
		return EndpointSlices(ctx, s.c, ns)
	},
		func(x *discoveryv1.EndpointSlice) string { return x.Namespace })
}

// RBACNetworkPolicies is what NetworkPolicies needs.
var RBACNetworkPolicies = []model.Permission{{Group: "networking.k8s.io", Resource: "networkpolicies", Verbs: []string{"list"}}}

// NetworkPolicies lists every NetworkPolicy (policies are judged cluster-wide).
func (s *Snapshot) NetworkPolicies(ctx context.Context) ([]networkingv1.NetworkPolicy, error) {
	v, err := s.get(ctx, "networkpolicies", func(ctx context.Context) (any, error) {
		return listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]networkingv1.NetworkPolicy, metav1.ListMeta, error) {
			l, err := s.c.NetworkingV1().NetworkPolicies("").List(ctx, o)
			if err != nil {
				return nil, metav1.ListMeta{}, fmt.Errorf("listing networkpolicies in all namespaces (needs list on networkpolicies.networking.k8s.io): %w", err)
			}
			return l.Items, l.ListMeta, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return v.([]networkingv1.NetworkPolicy), nil
}

// RBACNamespaces is what Namespaces needs.
var RBACNamespaces = []model.Permission{{Resource: "namespaces", Verbs: []string{"list"}}}

// Namespaces lists every namespace.
func (s *Snapshot) Namespaces(ctx context.Context) ([]corev1.Namespace, error) {
	v, err := s.get(ctx, "namespaces", func(ctx context.Context) (any, error) {
		return listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]corev1.Namespace, metav1.ListMeta, error) {
			l, err := s.c.CoreV1().Namespaces().List(ctx, o)
			if err != nil {
				return nil, metav1.ListMeta{}, fmt.Errorf("listing namespaces (needs list on namespaces): %w", err)
			}
			return l.Items, l.ListMeta, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return v.([]corev1.Namespace), nil
}

// AllPods lists the pods of every namespace, whatever the scope (the policy
// engine judges selectors across namespaces).
func (s *Snapshot) AllPods(ctx context.Context) ([]corev1.Pod, error) {
	if s.scope == "" {
		return s.Pods(ctx, "")
	}
	v, err := s.get(ctx, "pods/*", func(ctx context.Context) (any, error) { return Pods(ctx, s.c, "", "") })
	if err != nil {
		return nil, err
	}
	return v.([]corev1.Pod), nil
}

// RBACDeployments is what Deployments needs.
var RBACDeployments = []model.Permission{{Group: "apps", Resource: "deployments", Verbs: []string{"list"}}}

// Deployments lists the Deployments of ns ("" for every namespace in scope).
func (s *Snapshot) Deployments(ctx context.Context, ns string) ([]appsv1.Deployment, error) {
	return items(ctx, s, "deployments", ns, func(ctx context.Context, ns string) ([]appsv1.Deployment, error) {
		return listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]appsv1.Deployment, metav1.ListMeta, error) {
			l, err := s.c.AppsV1().Deployments(ns).List(ctx, o)
			if err != nil {
				return nil, metav1.ListMeta{}, fmt.Errorf("listing deployments%s: %w", inNamespace(ns), err)
			}
			return l.Items, l.ListMeta, nil
		})
	}, func(x *appsv1.Deployment) string { return x.Namespace })
}

// RBACStatefulSets is what StatefulSets needs.
var RBACStatefulSets = []model.Permission{{Group: "apps", Resource: "statefulsets", Verbs: []string{"list"}}}

// StatefulSets lists the StatefulSets of ns ("" for every namespace in scope).
func (s *Snapshot) StatefulSets(ctx context.Context, ns string) ([]appsv1.StatefulSet, error) {
	return items(ctx, s, "statefulsets", ns, func(ctx context.Context, ns string) ([]appsv1.StatefulSet, error) {
		return listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]appsv1.StatefulSet, metav1.ListMeta, error) {
			l, err := s.c.AppsV1().StatefulSets(ns).List(ctx, o)
			if err != nil {
				return nil, metav1.ListMeta{}, fmt.Errorf("listing statefulsets%s: %w", inNamespace(ns), err)
			}
			return l.Items, l.ListMeta, nil
		})
	}, func(x *appsv1.StatefulSet) string { return x.Namespace })
}

// KubeletConfig is node's configz, read once per run.
func (s *Snapshot) KubeletConfig(ctx context.Context, node string) (*kubeletv1beta1.KubeletConfiguration, error) {
	v, err := s.get(ctx, "configz/"+node, func(ctx context.Context) (any, error) { return KubeletConfig(ctx, s.c, node) })
	if err != nil {
		return nil, err
	}
	return v.(*kubeletv1beta1.KubeletConfiguration), nil
}

// KubeletConfigs reads every node's configz concurrently (bounded); the
// errors are per node, by index.
func (s *Snapshot) KubeletConfigs(ctx context.Context, nodes []string) ([]*kubeletv1beta1.KubeletConfiguration, []error) {
	out := make([]*kubeletv1beta1.KubeletConfiguration, len(nodes))
	errs := make([]error, len(nodes))
	sem := make(chan struct{}, configzParallel)
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = s.KubeletConfig(ctx, n)
		})
	}
	wg.Wait()
	return out, errs
}

// RBACConfigMap is what ConfigMap needs: list, to read a namespace's
// ConfigMaps in one request; get, for a role that grants only that.
var RBACConfigMap = []model.Permission{{Resource: "configmaps", Verbs: []string{"get", "list"}}}

// ConfigMap is one ConfigMap, from the run's one list of the ConfigMaps of
// ns (a NotFound error when there is none by that name): the probes read
// several of kube-system's, and a namespace holds few. A role that may get
// but not list ConfigMaps reads each one by name instead.
func (s *Snapshot) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	v, err := s.get(ctx, "configmaps/"+ns, func(ctx context.Context) (any, error) {
		return listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]corev1.ConfigMap, metav1.ListMeta, error) {
			l, err := s.c.CoreV1().ConfigMaps(ns).List(ctx, o)
			if err != nil {
				return nil, metav1.ListMeta{}, fmt.Errorf("listing configmaps%s: %w", inNamespace(ns), err)
			}
			return l.Items, l.ListMeta, nil
		})
	})
	if Forbidden(err) {
		v, err := s.get(ctx, "configmap/"+ns+"/"+name, func(ctx context.Context) (any, error) {
			return s.c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		})
		if err != nil {
			return nil, err
		}
		return v.(*corev1.ConfigMap), nil
	}
	if err != nil {
		return nil, err
	}
	all := v.([]corev1.ConfigMap)
	for i := range all {
		if all[i].Name == name {
			return &all[i], nil
		}
	}
	return nil, apierrors.NewNotFound(corev1.Resource("configmaps"), name)
}

// RBACDaemonSet is what DaemonSet and DaemonSets need.
var RBACDaemonSet = []model.Permission{{Group: "apps", Resource: "daemonsets", Verbs: []string{"list"}}}

// DaemonSets lists every DaemonSet, whatever the scope: node agents (CNIs,
// kube-proxy, DNS caches) live in system namespaces, and a cluster has few.
func (s *Snapshot) DaemonSets(ctx context.Context) ([]appsv1.DaemonSet, error) {
	v, err := s.get(ctx, "daemonsets", func(ctx context.Context) (any, error) {
		return listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]appsv1.DaemonSet, metav1.ListMeta, error) {
			l, err := s.c.AppsV1().DaemonSets("").List(ctx, o)
			if err != nil {
				return nil, metav1.ListMeta{}, fmt.Errorf("listing daemonsets in all namespaces: %w", err)
			}
			return l.Items, l.ListMeta, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return v.([]appsv1.DaemonSet), nil
}

// DaemonSet is one DaemonSet, from the run's list of them (a NotFound
// error when there is none by that name).
func (s *Snapshot) DaemonSet(ctx context.Context, ns, name string) (*appsv1.DaemonSet, error) {
	all, err := s.DaemonSets(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Namespace == ns && all[i].Name == name {
			return &all[i], nil
		}
	}
	return nil, apierrors.NewNotFound(appsv1.Resource("daemonsets"), name)
}

// RBACService is what Service needs.
var RBACService = RBACServices

// Service is one Service, from the run's list of the Services of its
// namespace (a NotFound error when there is none by that name): the list
// other probes read anyway, not one more request.
func (s *Snapshot) Service(ctx context.Context, ns, name string) (*corev1.Service, error) {
	all, err := s.Services(ctx, ns)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Name == name {
			return &all[i], nil
		}
	}
	return nil, apierrors.NewNotFound(corev1.Resource("services"), name)
}

// peek returns the value of key when some probe of the run has asked for
// it already (waiting for a read still under way), and false when none has.
func (s *Snapshot) peek(ctx context.Context, key string) (any, bool, error) {
	s.mu.Lock()
	e, ok := s.entries[key]
	s.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	select {
	case <-e.done:
		return e.val, true, e.err
	case <-ctx.Done():
		return nil, true, context.Cause(ctx)
	}
}

// Labelled returns the namespaces, pods and Services of every namespace
// whose labels match selector, from lists other probes of the run have
// read already; ok is false when the run has not read all three (or a read
// failed), so a caller lists what it needs itself rather than have a
// narrow question read a whole large cluster.
func (s *Snapshot) Labelled(ctx context.Context, selector string) (nss []corev1.Namespace, pods []corev1.Pod, svcs []corev1.Service, ok bool) {
	sel, err := labels.Parse(selector)
	if err != nil || s.scope != "" {
		return nil, nil, nil, false
	}
	vals := make([]any, 3)
	for i, key := range []string{"namespaces", listKey("pods", ""), listKey("services", "")} {
		v, had, err := s.peek(ctx, key)
		if !had || err != nil {
			return nil, nil, nil, false
		}
		vals[i] = v
	}
	nss = matching(vals[0].([]corev1.Namespace), sel, func(x *corev1.Namespace) map[string]string { return x.Labels })
	pods = matching(vals[1].([]corev1.Pod), sel, func(x *corev1.Pod) map[string]string { return x.Labels })
	svcs = matching(vals[2].([]corev1.Service), sel, func(x *corev1.Service) map[string]string { return x.Labels })
	return nss, pods, svcs, true
}

// matching keeps the items whose labels match sel.
func matching[T any](all []T, sel labels.Selector, labelsOf func(*T) map[string]string) []T {
	var out []T
	for i := range all {
		if sel.Matches(labels.Set(labelsOf(&all[i]))) {
			out = append(out, all[i])
		}
	}
	return out
}

// Memo memoizes a value derived from the cluster (a discovery several
// probes share) under key, computing it once per run.
func (s *Snapshot) Memo(ctx context.Context, key string, fetch func(context.Context) (any, error)) (any, error) {
	return s.get(ctx, "memo/"+key, fetch)
}
