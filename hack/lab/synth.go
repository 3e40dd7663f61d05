package main

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/ptr"
)

// A synthetic cluster fills the running lab's API server with the objects of
// a big cluster, to measure netsleuth at scale on a real API server: Nodes
// with pod CIDRs and no kubelet behind them (so NotReady, with no addresses
// anything could dial), pods bound to them that never run, Services (their
// EndpointSlices made by the controller-manager), and NetworkPolicies. Nothing
// of it carries traffic: the Services are labelled for a proxy that does not
// exist, so kube-proxy ignores them. Every object is labelled synthLabel;
// `synth off` or `down` removes them.
const (
	synthLabel  = "netsleuth.lab/synthetic"
	synthPrefix = "nsl-synth-"
	// kube-proxy skips Services naming another proxy.
	proxyNameLabel = "service.kubernetes.io/service-proxy-name"
	synthWorkers   = 64
	synthDeleters  = 8
)

// synthSize is one of the sizes the scale benchmarks use.
type synthSize struct {
	Name                                        string
	Nodes, Pods, Services, Policies, Namespaces int
}

var synthSizes = []synthSize{
	{"small", 200, 6000, 500, 200, 20},
	{"medium", 1000, 30000, 2500, 1000, 100},
	{"large", 2000, 60000, 5000, 2000, 200},
}

func parseSynthSize(s string) (synthSize, error) {
	for _, z := range synthSizes {
		if z.Name == s {
			return z, nil
		}
	}
	return synthSize{}, usageError{fmt.Sprintf("synth takes small, medium, large or off (got %q)", s)}
}

// synthPodCIDR is synthetic node i's pod range: a /27 of the lab's pod CIDR
// above the /24s the real nodes get (10.244.4.0/27 onwards; 2,000 of them fit).
func synthPodCIDR(i int) netip.Prefix {
	base := podCIDR.Addr().As4()
	off := 4*256 + i*32
	base[2] += byte(off / 256)
	base[3] = byte(off % 256)
	return netip.PrefixFrom(netip.AddrFrom4(base), 27)
}

func synthNodeName(i int) string { return fmt.Sprintf("%snode-%04d", synthPrefix, i) }
func synthNS(i int) string       { return fmt.Sprintf("%s%03d", synthPrefix, i) }

func synthMeta(name, ns, size string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{synthLabel: size}}
}

func synthNode(i int, size string) *corev1.Node {
	cidr := synthPodCIDR(i).String()
	n := &corev1.Node{ObjectMeta: synthMeta(synthNodeName(i), "", size)}
	n.Labels["kubernetes.io/hostname"] = n.Name
	n.Labels["kubernetes.io/os"] = "linux"
	n.Labels["topology.kubernetes.io/zone"] = fmt.Sprintf("synth-%c", 'a'+i%3)
	n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
	rl := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods: resource.MustParse("30"),
	}
	now := metav1.Now()
	n.Status = corev1.NodeStatus{
		Capacity: rl, Allocatable: rl,
		// Unknown, as the node controller marks a node whose kubelet stopped
		// posting status (it would do so here a grace period later): no
		// kubelet is behind it, so netsleuth reads nothing through it.
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NoKubelet",
			Message: "synthetic node of the netsleuth lab: no kubelet behind it", LastHeartbeatTime: now, LastTransitionTime: now}},
		NodeInfo: corev1.NodeSystemInfo{KubeletVersion: kubeVersion, ContainerRuntimeVersion: "containerd://synthetic",
			OperatingSystem: "linux", Architecture: "amd64", OSImage: "synthetic"},
	}
	return n
}

// synthPod is pod j of namespace ns, of app app, bound to node.
func synthPod(ns string, j, app int, node, size string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: synthMeta(fmt.Sprintf("app-%d-%d", app, j), ns, size)}
	p.Labels["app"] = "app-" + strconv.Itoa(app)
	p.Labels["tier"] = []string{"web", "api", "db"}[app%3]
	p.Spec = corev1.PodSpec{
		NodeName: node, EnableServiceLinks: ptr.To(false), AutomountServiceAccountToken: ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To[int64](0),
		// Never evicted from the NotReady node while a benchmark reads them.
		Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		Containers: []corev1.Container{{Name: "app", Image: labImage,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}},
	}
	return p
}

// synthService is Service k of ns: most select an app's pods; every 20th
// selects a label no pod has, and every 20th (offset) has no selector.
func synthService(ns string, k, apps int, size string) *corev1.Service {
	s := &corev1.Service{ObjectMeta: synthMeta(fmt.Sprintf("svc-%d", k), ns, size)}
	s.Labels[proxyNameLabel] = "netsleuth-synthetic"
	s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}}
	switch k % 20 {
	case 7:
		s.Spec.Selector = map[string]string{"app": fmt.Sprintf("app-%d-typo", k%apps)}
	case 13:
	default:
		s.Spec.Selector = map[string]string{"app": "app-" + strconv.Itoa(k%apps)}
	}
	return s
}

// synthPolicy is policy k of ns: a mix of default deny, allow by label,
// allow from a namespace, and egress to an ipBlock.
func synthPolicy(ns string, k, apps int, size string) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{ObjectMeta: synthMeta(fmt.Sprintf("pol-%d", k), ns, size)}
	app := map[string]string{"app": "app-" + strconv.Itoa(k%apps)}
	tcp, port := corev1.ProtocolTCP, intstr.FromInt32(8080)
	ports := []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}}
	switch k % 4 {
	case 0:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 1:
		p.Spec.PodSelector.MatchLabels = app
		p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{Ports: ports, From: []networkingv1.NetworkPolicyPeer{
			{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}}}}}}
	case 2:
		p.Spec.PodSelector.MatchLabels = app
		p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
			{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}}}}}
	default:
		p.Spec.PodSelector.MatchLabels = app
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		p.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{Ports: ports, To: []networkingv1.NetworkPolicyPeer{
			{IPBlock: &networkingv1.IPBlock{CIDR: externalNet.String()}}}}}
	}
	return p
}

// synthClient has no client-side rate limit: the lab's admin is exempt from
// API priority and fairness, and the point is to fill the server fast. It
// speaks protobuf, which costs the API server (on the same CPUs) a fraction
// of JSON's decoding and encoding. timeout bounds each request (0: none).
func (l *lab) synthClient(timeout time.Duration) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", l.p.Kubeconfig())
	if err != nil {
		return nil, err
	}
	cfg.Timeout, cfg.RateLimiter = timeout, flowcontrol.NewFakeAlwaysRateLimiter()
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return kubernetes.NewForConfig(cfg)
}

// synth creates the synthetic cluster of size z (after removing any other).
func (l *lab) synth(ctx context.Context, z synthSize) error {
	cs, err := l.synthClient(60 * time.Second)
	if err != nil {
		return err
	}
	if err := l.unsynth(ctx); err != nil {
		return err
	}
	start := time.Now()
	step(fmt.Sprintf("synthetic cluster %s: %d nodes, %d pods, %d Services, %d NetworkPolicies in %d namespaces",
		z.Name, z.Nodes, z.Pods, z.Services, z.Policies, z.Namespaces))
	var made atomic.Int64
	create := func(n int, f func(ctx context.Context, i int) error) error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(synthWorkers)
		for i := range n {
			g.Go(func() error {
				if err := f(gctx, i); err != nil && !apierrors.IsAlreadyExists(err) {
					return err
				}
				made.Add(1)
				return nil
			})
		}
		return g.Wait()
	}
	c := metav1.CreateOptions{}
	if err := create(z.Namespaces, func(ctx context.Context, i int) error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: synthMeta(synthNS(i), "", z.Name)}, c)
		return err
	}); err != nil {
		return fmt.Errorf("synthetic namespaces: %w", err)
	}
	if err := create(z.Nodes, func(ctx context.Context, i int) error {
		_, err := cs.CoreV1().Nodes().Create(ctx, synthNode(i, z.Name), c)
		return err
	}); err != nil {
		return fmt.Errorf("synthetic nodes: %w", err)
	}
	perNS, svcPerNS, polPerNS := z.Pods/z.Namespaces, z.Services/z.Namespaces, z.Policies/z.Namespaces
	apps := max(svcPerNS, 1)
	if err := create(z.Pods, func(ctx context.Context, i int) error {
		ns, j := synthNS(i/perNS), i%perNS
		_, err := cs.CoreV1().Pods(ns).Create(ctx, synthPod(ns, j, j%apps, synthNodeName(i%z.Nodes), z.Name), c)
		return err
	}); err != nil {
		return fmt.Errorf("synthetic pods: %w", err)
	}
	if err := create(z.Services, func(ctx context.Context, i int) error {
		ns := synthNS(i / svcPerNS)
		_, err := cs.CoreV1().Services(ns).Create(ctx, synthService(ns, i%svcPerNS, apps, z.Name), c)
		return err
	}); err != nil {
		return fmt.Errorf("synthetic Services: %w", err)
	}
	if err := create(z.Policies, func(ctx context.Context, i int) error {
		ns := synthNS(i / polPerNS)
		_, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, synthPolicy(ns, i%polPerNS, apps, z.Name), c)
		return err
	}); err != nil {
		return fmt.Errorf("synthetic NetworkPolicies: %w", err)
	}
	took := time.Since(start).Seconds()
	step(fmt.Sprintf("created %d objects in %.1fs (%.0f/s)", made.Load(), took, float64(made.Load())/took))
	// The controller-manager makes one EndpointSlice per Service with a
	// selector; a benchmark read before it finishes would measure less.
	want := z.Services - z.Services/20
	start = time.Now()
	if err := waitFor(ctx, "the controller-manager's EndpointSlices for the synthetic Services", 10*time.Minute, func(ctx context.Context) (bool, error) {
		n, err := synthSlices(ctx, cs)
		return n >= want, err
	}); err != nil {
		return err
	}
	step(fmt.Sprintf("the controller-manager made the EndpointSlices in %.1fs more", time.Since(start).Seconds()))
	return nil
}

// synthSlices counts the EndpointSlices in synthetic namespaces (the
// controller-manager labels them with the Service's name, not ours).
func synthSlices(ctx context.Context, cs kubernetes.Interface) (int, error) {
	l, err := cs.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range l.Items {
		if strings.HasPrefix(s.Namespace, synthPrefix) {
			n++
		}
	}
	return n, nil
}

// unsynth removes every synthetic object: the pods first with no grace (no
// kubelet would ever confirm a graceful delete), then the namespaces and the
// nodes, and waits until they are gone.
func (l *lab) unsynth(ctx context.Context) error {
	// One namespace's DeleteCollection removes its hundreds of pods one by
	// one on the server: it is bounded by ctx and the wait below, not by a
	// per-request timeout, and a few run at once (the server has 8
	// delete-collection workers; 64 at once starved each other past a
	// minute on the medium size).
	cs, err := l.synthClient(0)
	if err != nil {
		return err
	}
	sel := metav1.ListOptions{LabelSelector: synthLabel}
	nss, err := cs.CoreV1().Namespaces().List(ctx, sel)
	if err != nil {
		return err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: synthLabel, ResourceVersion: "0"})
	if err != nil {
		return err
	}
	if len(nss.Items)+len(nodes.Items) == 0 {
		return nil
	}
	start := time.Now()
	now := metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(synthDeleters)
	for _, n := range nss.Items {
		g.Go(func() error {
			if err := cs.CoreV1().Pods(n.Name).DeleteCollection(gctx, now, metav1.ListOptions{}); err != nil {
				return err
			}
			if err := cs.CoreV1().Namespaces().Delete(gctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			return nil
		})
	}
	g.Go(func() error { return cs.CoreV1().Nodes().DeleteCollection(gctx, metav1.DeleteOptions{}, sel) })
	if err := g.Wait(); err != nil {
		return fmt.Errorf("removing the synthetic cluster: %w", err)
	}
	if err := waitFor(ctx, "the synthetic cluster gone", 5*time.Minute, func(ctx context.Context) (bool, error) {
		nss, err := cs.CoreV1().Namespaces().List(ctx, sel)
		if err != nil {
			return false, err
		}
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: synthLabel, Limit: 1})
		return len(nss.Items)+len(nodes.Items) == 0, err
	}); err != nil {
		return err
	}
	step(fmt.Sprintf("removed the synthetic cluster (%d namespaces, %d nodes) in %.1fs", len(nss.Items), len(nodes.Items), time.Since(start).Seconds()))
	return nil
}
