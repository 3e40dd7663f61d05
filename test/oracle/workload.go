package oracle

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netsleuth/netsleuth/probes/policy"
)

// Config sizes a generated workload. The same Config and Seed always give the
// same workload.
type Config struct {
	Namespaces, Pods, Policies int
	Seed                       uint64
	// HostNetworkEvery makes every n-th pod a hostNetwork pod (0: none).
	HostNetworkEvery int
}

// Bench is the benchmark workload of issue 6.
var Bench = Config{Namespaces: 20, Pods: 1000, Policies: 500, Seed: 6, HostNetworkEvery: 100}

// BenchPorts are the five ports of the benchmark matrix.
var BenchPorts = []policy.Port{
	{Port: 80, Protocol: corev1.ProtocolTCP}, {Port: 443, Protocol: corev1.ProtocolTCP},
	{Port: 5432, Protocol: corev1.ProtocolTCP}, {Port: 8080, Protocol: corev1.ProtocolTCP},
	{Port: 53, Protocol: corev1.ProtocolUDP},
}

// World is a generated cluster.
type World struct {
	Pods       []policy.Pod
	Namespaces []policy.Namespace
	Policies   []*networkingv1.NetworkPolicy
}

var (
	apps  = []string{"web", "api", "db", "cache", "queue", "auth", "search", "billing", "mail", "report"}
	tiers = []string{"frontend", "backend", "data"}
	envs  = []string{"prod", "staging", "dev"}
	teams = []string{"red", "blue", "green", "gold"}
)

// Generate builds a deterministic world from c.
func Generate(c Config) World {
	r := rand.New(rand.NewPCG(c.Seed, 0x6e657473))
	var w World
	for i := 0; i < c.Namespaces; i++ {
		name := fmt.Sprintf("ns-%02d", i)
		if i == 0 {
			name = "kube-system"
		}
		w.Namespaces = append(w.Namespaces, policy.Namespace{Name: name, Labels: map[string]string{
			"kubernetes.io/metadata.name": name, "team": teams[i%len(teams)], "env": envs[i%len(envs)],
		}})
	}
	for i := 0; i < c.Pods; i++ {
		w.Pods = append(w.Pods, genPod(r, c, w.Namespaces[i%c.Namespaces].Name, i))
	}
	for i := 0; i < c.Policies; i++ {
		w.Policies = append(w.Policies, genPolicy(r, w.Namespaces[r.IntN(c.Namespaces)].Name, i))
	}
	return w
}

func genPod(r *rand.Rand, c Config, ns string, i int) policy.Pod {
	p := policy.Pod{
		Namespace: ns, Name: fmt.Sprintf("pod-%04d", i), Node: fmt.Sprintf("node-%d", i%10),
		Labels: map[string]string{"app": apps[r.IntN(len(apps))], "tier": tiers[r.IntN(len(tiers))], "env": envs[r.IntN(len(envs))]},
		IPs:    []netip.Addr{netip.AddrFrom4([4]byte{10, 244, byte(i / 250), byte(1 + i%250)})},
	}
	if ns == "kube-system" && i < 2*c.Namespaces {
		// Every pod carries app, tier and env: cyclonus v0.5.6 treats NotIn on
		// an absent key as no match, unlike apimachinery (see divergence_test.go).
		p.Labels = map[string]string{"k8s-app": "kube-dns", "app": "dns", "tier": "backend", "env": "prod"}
		p.Ports = []policy.ContainerPort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}, {Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP}}
		return p
	}
	if c.HostNetworkEvery > 0 && i%c.HostNetworkEvery == c.HostNetworkEvery-1 {
		p.HostNetwork = true
		p.IPs = []netip.Addr{netip.AddrFrom4([4]byte{192, 168, 1, byte(1 + i%10)})}
	}
	named := []policy.ContainerPort{
		{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}, {Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
		{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}, {Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP},
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
	}
	if r.IntN(3) > 0 {
		p.Ports = append(p.Ports, named[r.IntN(len(named))])
	}
	return p
}

func genPolicy(r *rand.Rand, ns string, i int) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("np-%03d", i)}}
	if r.IntN(100) < 9 { // default deny
		np.Name = fmt.Sprintf("default-deny-%03d", i)
		np.Spec.PolicyTypes = [][]networkingv1.PolicyType{
			{networkingv1.PolicyTypeIngress}, {networkingv1.PolicyTypeEgress},
			{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		}[r.IntN(3)]
		return np
	}
	np.Spec.PodSelector = genSelector(r, "pod")
	for n := r.IntN(3); n > 0; n-- {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{Ports: genPorts(r), From: genPeers(r)})
	}
	for n := r.IntN(3); n > 0; n-- {
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{Ports: genPorts(r), To: genPeers(r)})
	}
	if r.IntN(4) == 0 && len(np.Spec.Egress) > 0 {
		np.Spec.Egress = append(np.Spec.Egress, dnsRule())
	}
	switch r.IntN(4) {
	case 0: // leave empty: the API's defaulting applies
	case 1:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 2:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	default:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	}
	return np
}

func dnsRule() networkingv1.NetworkPolicyEgressRule {
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	p53 := intstr.FromInt32(53)
	return networkingv1.NetworkPolicyEgressRule{
		To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
		}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &p53}, {Protocol: &tcp, Port: &p53}},
	}
}

// genSelector returns a pod ("pod") or namespace ("ns") selector.
func genSelector(r *rand.Rand, kind string) metav1.LabelSelector {
	key, vals := "app", apps
	switch {
	case kind == "ns" && r.IntN(2) == 0:
		key, vals = "team", teams
	case kind == "ns":
		key, vals = "env", envs
	case r.IntN(3) == 0:
		key, vals = "tier", tiers
	}
	switch r.IntN(6) {
	case 0:
		return metav1.LabelSelector{}
	case 1:
		return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: metav1.LabelSelectorOpIn, Values: []string{vals[r.IntN(len(vals))], vals[r.IntN(len(vals))]}}}}
	case 2:
		return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: metav1.LabelSelectorOpNotIn, Values: []string{vals[r.IntN(len(vals))]}}}}
	case 3:
		return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: []string{key, "missing"}[r.IntN(2)], Operator: []metav1.LabelSelectorOperator{metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}[r.IntN(2)]}}}
	default:
		return metav1.LabelSelector{MatchLabels: map[string]string{key: vals[r.IntN(len(vals))]}}
	}
}

func genPeers(r *rand.Rand) []networkingv1.NetworkPolicyPeer {
	var out []networkingv1.NetworkPolicyPeer
	for n := r.IntN(3); n > 0; n-- {
		switch r.IntN(4) {
		case 0:
			s := genSelector(r, "pod")
			out = append(out, networkingv1.NetworkPolicyPeer{PodSelector: &s})
		case 1:
			s := genSelector(r, "ns")
			out = append(out, networkingv1.NetworkPolicyPeer{NamespaceSelector: &s})
		case 2:
			s, t := genSelector(r, "pod"), genSelector(r, "ns")
			out = append(out, networkingv1.NetworkPolicyPeer{PodSelector: &s, NamespaceSelector: &t})
		default:
			out = append(out, networkingv1.NetworkPolicyPeer{IPBlock: genIPBlock(r)})
		}
	}
	return out
}

func genIPBlock(r *rand.Rand) *networkingv1.IPBlock {
	switch r.IntN(4) {
	case 0:
		return &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}}
	case 1:
		return &networkingv1.IPBlock{CIDR: "192.168.1.0/24"}
	default:
		third := r.IntN(4)
		return &networkingv1.IPBlock{CIDR: fmt.Sprintf("10.244.%d.0/24", third), Except: []string{fmt.Sprintf("10.244.%d.%d/26", third, 64*r.IntN(4))}}
	}
}

func genPorts(r *rand.Rand) []networkingv1.NetworkPolicyPort {
	var out []networkingv1.NetworkPolicyPort
	for n := r.IntN(3); n > 0; n-- {
		proto := corev1.ProtocolTCP
		var p networkingv1.NetworkPolicyPort
		switch r.IntN(7) {
		case 0:
			p.Port = ptr(intstr.FromInt32([]int32{80, 443, 5432, 8080}[r.IntN(4)]))
		case 1:
			p.Port, p.EndPort = ptr(intstr.FromInt32(int32(1+r.IntN(80)*100))), ptr(int32(8080+r.IntN(2)*1000))
		case 2:
			proto = corev1.ProtocolUDP
			p.Port = ptr(intstr.FromInt32(53))
		case 3:
			p.Port = ptr(intstr.FromString([]string{"http", "https", "pg", "dns"}[r.IntN(4)]))
			if p.Port.StrVal == "dns" {
				proto = corev1.ProtocolUDP
			}
		case 4:
			proto = []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolSCTP, corev1.ProtocolTCP}[r.IntN(3)]
		default:
			p.Port = ptr(intstr.FromInt32(int32(80 + r.IntN(3))))
		}
		if r.IntN(3) > 0 || proto != corev1.ProtocolTCP {
			p.Protocol = &proto
		}
		out = append(out, p)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
