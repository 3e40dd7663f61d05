package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/netsleuth/netsleuth/model"
)

// CNI is what the cluster shows of its network plugin.
type CNI struct {
	// Name is calico, cilium, flannel, weave, antrea, kube-router, bridge
	// (no CNI agent: a plain plugin on the nodes' pod CIDRs), or "" unknown.
	Name    string
	Version string // "v3.31.0" when the cluster says
	// Evidence says what the name and version were read from.
	Evidence []string
	// Calico holds Calico's own objects when Name is calico and they could
	// be read (Kubernetes datastore: crd.projectcalico.org/v1).
	Calico *Calico
}

// Calico is what netsleuth reads of Calico's configuration.
type Calico struct {
	Pools []IPPool
	// HealthPorts is felix's health port by node ("" for the default),
	// from the FelixConfigurations default and node.<name>.
	HealthPorts map[string]int
}

// IPPool is one Calico IPPool.
type IPPool struct {
	Name        string
	CIDR        netip.Prefix
	NATOutgoing bool
	Disabled    bool
}

// DefaultFelixHealthPort is felix's health port when no FelixConfiguration
// sets one.
const DefaultFelixHealthPort = 9099

// FelixHealthPort is felix's health port on node.
func (c *Calico) FelixHealthPort(node string) int {
	if c == nil {
		return DefaultFelixHealthPort
	}
	if p, ok := c.HealthPorts[node]; ok {
		return p
	}
	if p, ok := c.HealthPorts[""]; ok {
		return p
	}
	return DefaultFelixHealthPort
}

// PoolFor is the enabled pool holding addr, if any.
func (c *Calico) PoolFor(addr netip.Addr) (IPPool, bool) {
	if c == nil {
		return IPPool{}, false
	}
	for _, p := range c.Pools {
		if !p.Disabled && p.CIDR.Contains(addr) {
			return p, true
		}
	}
	return IPPool{}, false
}

// String names the CNI for headers: "Calico v3.31.0", "plain bridge",
// "unknown".
func (c CNI) String() string {
	name := map[string]string{"calico": "Calico", "cilium": "Cilium", "flannel": "flannel", "weave": "Weave Net",
		"antrea": "Antrea", "kube-router": "kube-router", "bridge": "plain bridge"}[c.Name]
	switch {
	case c.Name == "":
		return "unknown"
	case name == "":
		name = c.Name
	}
	if c.Version != "" {
		return name + " " + c.Version
	}
	return name
}

// RBACCNI is what DiscoverCNI reads.
var RBACCNI = model.MergePermissions(RBACPods, RBACNodes,
	RBACDaemonSet,
	[]model.Permission{
		{Group: "crd.projectcalico.org", Resource: "clusterinformations", Verbs: []string{"get"}},
		{Group: "crd.projectcalico.org", Resource: "ippools", Verbs: []string{"list"}},
		{Group: "crd.projectcalico.org", Resource: "felixconfigurations", Verbs: []string{"list"}},
	})

// cniDaemonSets are the agents of the CNIs netsleuth knows, by DaemonSet
// name, and the namespaces installs put them in.
var cniDaemonSets = []struct{ name, cni string }{
	{"calico-node", "calico"}, {"cilium", "cilium"}, {"kube-flannel-ds", "flannel"},
	{"weave-net", "weave"}, {"antrea-agent", "antrea"}, {"kube-router", "kube-router"},
}

// CNIObjects is what DetectCNI judges from: plain data read from the cluster.
type CNIObjects struct {
	// ClusterInformation is crd.projectcalico.org/v1 ClusterInformation
	// "default" as JSON, nil when absent or unreadable.
	ClusterInformation []byte
	DaemonSets         []appsv1.DaemonSet // in kube-system, calico-system and kube-flannel
	Pods               []corev1.Pod       // kube-system's
	Nodes              []corev1.Node
}

// DetectCNI names the CNI from its objects: Calico's ClusterInformation
// (with the version calico-node wrote), a CNI agent's DaemonSet (the
// version from its image tag), Calico's pod annotations; with none of
// those, pods addressed from their nodes' pod CIDRs mean a plain plugin
// with host-local IPAM, such as bridge.
func DetectCNI(o CNIObjects) CNI {
	if len(o.ClusterInformation) > 0 {
		var ci struct {
			Spec struct {
				CalicoVersion string `json:"calicoVersion"`
			} `json:"spec"`
		}
		if json.Unmarshal(o.ClusterInformation, &ci) == nil {
			return CNI{Name: "calico", Version: ci.Spec.CalicoVersion,
				Evidence: []string{"ClusterInformation default (crd.projectcalico.org/v1): calicoVersion " + orNone(ci.Spec.CalicoVersion)}}
		}
	}
	for _, c := range cniDaemonSets {
		for _, d := range o.DaemonSets {
			if d.Name != c.name {
				continue
			}
			out := CNI{Name: c.cni, Evidence: []string{fmt.Sprintf("DaemonSet %s/%s", d.Namespace, d.Name)}}
			if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
				out.Version = imageTag(cs[0].Image)
				out.Evidence[0] += " image " + cs[0].Image
			}
			return out
		}
	}
	for _, p := range o.Pods {
		if ip := p.Annotations["cni.projectcalico.org/podIP"]; ip != "" {
			return CNI{Name: "calico", Evidence: []string{fmt.Sprintf("pod %s/%s annotated cni.projectcalico.org/podIP=%s by Calico's CNI plugin", p.Namespace, p.Name, ip)}}
		}
	}
	if p, cidr, ok := podOnNodeCIDR(o.Pods, o.Nodes); ok {
		return CNI{Name: "bridge", Evidence: []string{fmt.Sprintf("no CNI agent DaemonSet and no CNI objects; pod %s/%s has %s from its node's pod CIDR %s (host-local IPAM): a plain plugin such as bridge",
			p.Namespace, p.Name, p.Status.PodIP, cidr)}}
	}
	return CNI{Evidence: []string{"no CNI agent DaemonSet, no CNI objects and no pod addressed from its node's pod CIDR"}}
}

// podOnNodeCIDR finds a pod on the pod network whose address lies in its
// node's spec.podCIDR.
func podOnNodeCIDR(pods []corev1.Pod, nodes []corev1.Node) (corev1.Pod, string, bool) {
	cidrs := map[string]string{}
	for _, n := range nodes {
		cidrs[n.Name] = n.Spec.PodCIDR
	}
	for _, p := range pods {
		if p.Spec.HostNetwork || p.Status.PodIP == "" {
			continue
		}
		pf, err1 := netip.ParsePrefix(cidrs[p.Spec.NodeName])
		a, err2 := netip.ParseAddr(p.Status.PodIP)
		if err1 == nil && err2 == nil && pf.Contains(a) {
			return p, pf.String(), true
		}
	}
	return corev1.Pod{}, "", false
}

// imageTag is the tag of an image reference ("" for a digest or none).
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return ""
	}
	return image[i+1:]
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// ParseCalicoPools reads a crd.projectcalico.org/v1 IPPoolList.
func ParseCalicoPools(list []byte) ([]IPPool, error) {
	var l struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
			Spec     struct {
				CIDR        string `json:"cidr"`
				NATOutgoing bool   `json:"natOutgoing"`
				Disabled    bool   `json:"disabled"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := json.Unmarshal(list, &l); err != nil {
		return nil, fmt.Errorf("decode IPPools: %w", err)
	}
	var out []IPPool
	for _, it := range l.Items {
		pf, err := netip.ParsePrefix(it.Spec.CIDR)
		if err != nil {
			continue
		}
		out = append(out, IPPool{Name: it.Metadata.Name, CIDR: pf.Masked(), NATOutgoing: it.Spec.NATOutgoing, Disabled: it.Spec.Disabled})
	}
	return out, nil
}

// ParseFelixHealthPorts reads a crd.projectcalico.org/v1
// FelixConfigurationList: healthPort of "default" (key "") and of each
// "node.<name>" (key <name>).
func ParseFelixHealthPorts(list []byte) (map[string]int, error) {
	var l struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
			Spec     struct {
				HealthPort *int `json:"healthPort"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := json.Unmarshal(list, &l); err != nil {
		return nil, fmt.Errorf("decode FelixConfigurations: %w", err)
	}
	out := map[string]int{}
	for _, it := range l.Items {
		if it.Spec.HealthPort == nil {
			continue
		}
		switch name := it.Metadata.Name; {
		case name == "default":
			out[""] = *it.Spec.HealthPort
		case strings.HasPrefix(name, "node."):
			out[strings.TrimPrefix(name, "node.")] = *it.Spec.HealthPort
		}
	}
	return out, nil
}

const calicoAPI = "/apis/crd.projectcalico.org/v1/"

// DiscoverCNI reads the CNI's objects once per run and names the CNI
// (DetectCNI); for Calico it also reads the IPPools and felix's health
// ports. It never fails: what cannot be read is left out.
func DiscoverCNI(ctx context.Context, s *Snapshot) CNI {
	v, _ := s.Memo(ctx, "cni", func(ctx context.Context) (any, error) {
		var o CNIObjects
		o.ClusterInformation, _ = s.raw(ctx, calicoAPI+"clusterinformations/default")
		all, _ := s.DaemonSets(ctx)
		for _, ds := range all {
			if ref := ds.Namespace + "/" + ds.Name; ds.Namespace == "kube-system" || ref == "calico-system/calico-node" || ref == "kube-flannel/kube-flannel-ds" {
				o.DaemonSets = append(o.DaemonSets, ds)
			}
		}
		o.Pods, _ = s.Pods(ctx, "kube-system")
		o.Nodes, _ = s.Nodes(ctx)
		c := DetectCNI(o)
		if c.Name == "calico" {
			c.Calico = &Calico{}
			if b, err := s.raw(ctx, calicoAPI+"ippools"); err == nil {
				c.Calico.Pools, _ = ParseCalicoPools(b)
			}
			if b, err := s.raw(ctx, calicoAPI+"felixconfigurations"); err == nil {
				c.Calico.HealthPorts, _ = ParseFelixHealthPorts(b)
			}
		}
		return c, nil
	})
	c, _ := v.(CNI)
	return c
}

// raw GETs an API path (custom resources netsleuth has no typed client
// for); an error when the client cannot (a fake) or the server says no.
func (s *Snapshot) raw(ctx context.Context, path string) ([]byte, error) {
	rc := s.c.Discovery().RESTClient()
	if rc == nil {
		return nil, fmt.Errorf("no REST client to read %s", path)
	}
	return rc.Get().AbsPath(path).DoRaw(ctx)
}
