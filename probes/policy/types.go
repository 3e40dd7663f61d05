// Package policy answers "can A reach B on this port?" from the NetworkPolicies
// alone, explains the answer, computes whole-cluster reachability matrices and
// lints policies for common mistakes. The engine is pure Go: it takes plain
// data and never talks to a cluster; the probe in probe.go feeds it.
package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// namespaceNameLabel is the label the API server puts on every namespace.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// Pod is what the engine needs to know about one pod.
type Pod struct {
	Namespace   string
	Name        string
	Labels      map[string]string
	IPs         []netip.Addr
	Node        string
	HostNetwork bool
	Ports       []ContainerPort
}

// Key is the pod's "namespace/name".
func (p *Pod) Key() string { return p.Namespace + "/" + p.Name }

// ContainerPort is one declared container port; Name makes it usable by
// policies that name ports.
type ContainerPort struct {
	Name     string
	Port     int32
	Protocol corev1.Protocol
}

// Namespace is a namespace and its labels.
type Namespace struct {
	Name   string
	Labels map[string]string
}

// Port is the destination port and protocol of a question.
type Port struct {
	Port     int32
	Protocol corev1.Protocol
}

func (p Port) String() string {
	return fmt.Sprintf("%s/%d", strings.ToLower(string(p.Protocol)), p.Port)
}

// ParsePort reads "80", "80/tcp", "udp/53" or "53/UDP". TCP is the default.
func ParsePort(s string) (Port, error) {
	num, proto, _ := strings.Cut(s, "/")
	if _, err := strconv.Atoi(num); err != nil {
		num, proto = proto, num
	}
	n, err := strconv.ParseInt(num, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return Port{}, fmt.Errorf("port %q: want a number from 1 to 65535, optionally with /tcp, /udp or /sctp", s)
	}
	p := Port{Port: int32(n), Protocol: corev1.ProtocolTCP}
	switch strings.ToUpper(proto) {
	case "", "TCP":
	case "UDP":
		p.Protocol = corev1.ProtocolUDP
	case "SCTP":
		p.Protocol = corev1.ProtocolSCTP
	default:
		return Port{}, fmt.Errorf("port %q: unknown protocol %q (want tcp, udp or sctp)", s, proto)
	}
	return p, nil
}

// PodFromKube converts a client-go pod.
func PodFromKube(p *corev1.Pod) Pod {
	out := Pod{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, Node: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork}
	for _, ip := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			out.IPs = append(out.IPs, a)
		}
	}
	if len(out.IPs) == 0 && p.Status.PodIP != "" {
		if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			out.IPs = append(out.IPs, a)
		}
	}
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		for _, cp := range c.Ports {
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			out.Ports = append(out.Ports, ContainerPort{Name: cp.Name, Port: cp.ContainerPort, Protocol: proto})
		}
	}
	return out
}

// NamespaceFromKube converts a client-go namespace. The automatic
// kubernetes.io/metadata.name label is added when missing.
func NamespaceFromKube(n *corev1.Namespace) Namespace {
	labels := make(map[string]string, len(n.Labels)+1)
	for k, v := range n.Labels {
		labels[k] = v
	}
	if _, ok := labels[namespaceNameLabel]; !ok {
		labels[namespaceNameLabel] = n.Name
	}
	return Namespace{Name: n.Name, Labels: labels}
}

// bitset is a set of pod indexes.
type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)      { b[i>>6] |= 1 << (uint(i) & 63) }
func (b bitset) has(i int) bool { return b[i>>6]&(1<<(uint(i)&63)) != 0 }
func (b bitset) or(o bitset)    { orInto(b, o) }
func (b bitset) and(o bitset)   { andInto(b, o) }
func (b bitset) clear()         { clear(b) }
func (b bitset) clone() bitset  { return append(bitset(nil), b...) }
func orInto(dst, src bitset) {
	for i := range dst {
		dst[i] |= src[i]
	}
}
func andInto(dst, src bitset) {
	for i := range dst {
		dst[i] &= src[i]
	}
}
func (b bitset) empty() bool {
	for _, w := range b {
		if w != 0 {
			return false
		}
	}
	return true
}
