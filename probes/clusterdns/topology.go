// Package clusterdns reads the cluster's DNS deployment once for every probe
// that needs it (the kube-dns Service and its endpoints, the CoreDNS pods and
// Corefile, the NodeLocal DNS cache, kube-proxy's mode) and judges the one
// fact two probes meet: the clusterDNS each kubelet hands to pods.
package clusterdns

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// Names of the objects a standard cluster DNS deployment uses.
const (
	SystemNS         = "kube-system"
	ServiceName      = "kube-dns"
	DNSLabel         = "k8s-app=kube-dns"
	NodeLocalName    = "node-local-dns"
	NodeLocalLabel   = "k8s-app=node-local-dns"
	DefaultNodeLocal = "169.254.20.10"
)

// Pod is a DNS server pod (CoreDNS or NodeLocal DNS cache).
type Pod struct {
	Name, Node, IP string
	Ready          bool
	Phase          string
}

// Service is the kube-dns Service.
type Service struct {
	Namespace, Name string
	ClusterIPs      []string
}

// Endpoint is one address of the kube-dns EndpointSlices.
type Endpoint struct {
	IP, Node, Pod string
	Ready         bool
}

// NodeLocal describes a NodeLocal DNS cache DaemonSet, if any.
type NodeLocal struct {
	Present   bool
	Name      string
	Addresses []string // listen addresses (-localip or bind)
	Source    string   // where Addresses were read
	Pods      []Pod
	// NodeSelector is the DaemonSet's pod template nodeSelector: a node
	// whose labels it does not match never gets a cache pod.
	NodeSelector map[string]string
}

// Topology is everything the configuration half of the dns probe reads.
type Topology struct {
	Service        *Service // nil when there is no kube-dns Service
	Endpoints      []Endpoint
	Pods           []Pod // CoreDNS pods (k8s-app=kube-dns)
	Corefile       *Corefile
	CorefileSource string
	NodeLocal      NodeLocal
	// ProxyMode is iptables, ipvs, nftables, ... or "" when unknown.
	ProxyMode, ProxyModeSource string
	Notes                      []string
}

// ServiceIPs returns the kube-dns ClusterIPs.
func (t Topology) ServiceIPs() []string {
	if t.Service == nil {
		return nil
	}
	return t.Service.ClusterIPs
}

// RBAC is what Discover reads: the kube-dns Service, its EndpointSlices and
// pods, the Corefile and NodeLocal ConfigMaps and DaemonSet, kube-proxy's
// ConfigMap and pods, the nodes, and kube-proxy's /proxyMode through the
// node proxy.
var RBAC = model.MergePermissions(kube.RBACService, kube.RBACEndpointSlices, kube.RBACPods, kube.RBACConfigMap,
	kube.RBACDaemonSet, kube.RBACNodes, kube.RBACKubeProxy)

// Discover reads the cluster's DNS deployment. It fails only when the API
// server forbids reading the kube-dns Service, its EndpointSlices or its
// pods; whatever else it cannot read is recorded in Notes.
func Discover(ctx context.Context, s *kube.Snapshot) (Topology, error) {
	v, err := s.Memo(ctx, "clusterdns", func(ctx context.Context) (any, error) { return discover(ctx, s) })
	if err != nil {
		return Topology{}, err
	}
	t := v.(Topology)
	t.Notes = append([]string(nil), t.Notes...)
	return t, nil
}

func discover(ctx context.Context, s *kube.Snapshot) (Topology, error) {
	var t Topology
	svc, err := s.Service(ctx, SystemNS, ServiceName)
	switch {
	case apierrors.IsNotFound(err):
		t.Notes = append(t.Notes, "no Service kube-system/kube-dns")
	case err != nil:
		return t, fmt.Errorf("reading Service kube-system/kube-dns: %w", err)
	default:
		t.Service = &Service{Namespace: svc.Namespace, Name: svc.Name, ClusterIPs: svc.Spec.ClusterIPs}
		if len(t.Service.ClusterIPs) == 0 && svc.Spec.ClusterIP != "" {
			t.Service.ClusterIPs = []string{svc.Spec.ClusterIP}
		}
	}
	if t.Endpoints, err = endpoints(ctx, s); err != nil {
		return t, err
	}
	pods, err := s.PodsMatching(ctx, SystemNS, DNSLabel)
	if err != nil {
		return t, err
	}
	t.Pods = podsOf(pods)
	t.readCorefile(ctx, s)
	t.NodeLocal = discoverNodeLocal(ctx, s, &t.Notes)
	proxy := kube.DiscoverKubeProxy(ctx, s)
	t.ProxyMode, t.ProxyModeSource = proxy.Mode, proxy.Source
	t.Notes = append(t.Notes, proxy.Notes...)
	return t, nil
}

func endpoints(ctx context.Context, snap *kube.Snapshot) ([]Endpoint, error) {
	slices, err := snap.EndpointSlices(ctx, SystemNS)
	if err != nil {
		return nil, fmt.Errorf("listing EndpointSlices of kube-system/kube-dns: %w", err)
	}
	var out []Endpoint
	for _, s := range slices {
		if s.Labels["kubernetes.io/service-name"] != ServiceName {
			continue
		}
		for _, e := range s.Endpoints {
			ep := Endpoint{Ready: e.Conditions.Ready == nil || *e.Conditions.Ready}
			if e.NodeName != nil {
				ep.Node = *e.NodeName
			}
			if e.TargetRef != nil {
				ep.Pod = e.TargetRef.Name
			}
			for _, a := range e.Addresses {
				ep.IP = a
				out = append(out, ep)
			}
		}
	}
	return out, nil
}

func podsOf(pods []corev1.Pod) []Pod {
	var out []Pod
	for _, p := range pods {
		dp := Pod{Name: p.Name, Node: p.Spec.NodeName, IP: p.Status.PodIP, Phase: string(p.Status.Phase)}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				dp.Ready = true
			}
		}
		out = append(out, dp)
	}
	return out
}

func (t *Topology) readCorefile(ctx context.Context, s *kube.Snapshot) {
	for _, name := range []string{"coredns", "kube-dns"} {
		cm, err := s.ConfigMap(ctx, SystemNS, name)
		if err != nil {
			t.Notes = append(t.Notes, fmt.Sprintf("ConfigMap kube-system/%s not readable: %v", name, err))
			continue
		}
		if src, ok := cm.Data["Corefile"]; ok {
			cf := ParseCorefile(src)
			t.Corefile, t.CorefileSource = &cf, "ConfigMap kube-system/"+name
			return
		}
	}
}

// discoverNodeLocal finds the node-local-dns DaemonSet, its listen
// addresses and its pods.
func discoverNodeLocal(ctx context.Context, s *kube.Snapshot, notes *[]string) NodeLocal {
	var nl NodeLocal
	ds, err := s.DaemonSet(ctx, SystemNS, NodeLocalName)
	if err != nil {
		if !apierrors.IsNotFound(err) {
			*notes = append(*notes, "DaemonSet kube-system/node-local-dns not readable: "+err.Error())
		}
		return nl
	}
	nl.Present, nl.Name, nl.NodeSelector = true, ds.Name, ds.Spec.Template.Spec.NodeSelector
	nl.Addresses, nl.Source = localIPs(ds)
	if len(nl.Addresses) == 0 {
		if cm, err := s.ConfigMap(ctx, SystemNS, NodeLocalName); err == nil {
			nl.Addresses, nl.Source = ParseCorefile(cm.Data["Corefile"]).Binds(), "bind in ConfigMap kube-system/"+NodeLocalName
		}
	}
	if len(nl.Addresses) == 0 {
		nl.Addresses, nl.Source = []string{DefaultNodeLocal}, "default (no -localip flag or bind directive found)"
	}
	nl.Addresses = unique(nl.Addresses)
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		*notes = append(*notes, "node-local-dns selector: "+err.Error())
		return nl
	}
	pods, err := s.PodsMatching(ctx, SystemNS, sel.String())
	if err != nil {
		*notes = append(*notes, "node-local-dns pods not readable: "+err.Error())
	}
	nl.Pods = podsOf(pods)
	return nl
}

// localIPs reads node-cache's -localip flag ("169.254.20.10,10.96.0.10").
func localIPs(ds *appsv1.DaemonSet) ([]string, string) {
	for _, ctr := range ds.Spec.Template.Spec.Containers {
		args := append(append([]string{}, ctr.Command...), ctr.Args...)
		for i, a := range args {
			v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "localip")
			switch {
			case !ok || !strings.HasPrefix(a, "-"):
				continue
			case strings.HasPrefix(v, "="):
				v = v[1:]
			case v == "" && i+1 < len(args):
				v = args[i+1]
			default:
				continue
			}
			return strings.Split(v, ","), fmt.Sprintf("-localip flag of container %s", ctr.Name)
		}
	}
	return nil, ""
}

// unique drops repeated strings, keeping the first of each.
func unique(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
