package policy

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Engine is a compiled set of pods, namespaces and NetworkPolicies. Every
// selector is evaluated once, at Compile; questions and matrices then work on
// per-pod lists of selecting policies and bitsets of pods.
type Engine struct {
	Pods       []Pod
	Namespaces map[string]Namespace
	Policies   []*networkingv1.NetworkPolicy
	// Problems lists what Compile could not use (invalid selectors or CIDRs);
	// the affected selector or peer matches nothing.
	Problems []string

	podIndex map[string]int
	nsPods   map[string]bitset // namespace -> its pods (hostNetwork excluded)
	all      bitset            // every pod that is not hostNetwork
	policies []compiledPolicy
	in, out  [][]int32 // pod -> indexes of policies isolating it for ingress / egress
	named    map[namedKey]bitset
	selCache map[string]bitset
}

type namedKey struct {
	name string
	Port
}

type compiledPolicy struct {
	np       *networkingv1.NetworkPolicy
	ns       string
	selected bitset
	ingress  bool
	egress   bool
	inRules  []compiledRule
	outRules []compiledRule
}

func (c *compiledPolicy) name() string { return c.ns + "/" + c.np.Name }

type compiledRule struct {
	ports    []portSpec // empty: every port
	allPeers bool       // no from/to: every peer, pods and IPs
	peers    []compiledPeer
}

type portSpec struct {
	proto      corev1.Protocol
	anyPort    bool
	start, end int32
	name       string
}

type compiledPeer struct {
	pods  bitset // pods this peer admits (for ipBlock: pods whose IP is inside)
	block *ipBlock
	spec  networkingv1.NetworkPolicyPeer
}

type ipBlock struct {
	cidr   netip.Prefix
	except []netip.Prefix
}

func (b *ipBlock) contains(a netip.Addr) bool {
	if !b.cidr.Contains(a) {
		return false
	}
	for _, e := range b.except {
		if e.Contains(a) {
			return false
		}
	}
	return true
}

// Compile indexes pods, namespaces and policies. Namespaces that pods or
// policies mention but that are missing from namespaces get only the
// automatic kubernetes.io/metadata.name label.
func Compile(pods []Pod, namespaces []Namespace, policies []*networkingv1.NetworkPolicy) *Engine {
	e := &Engine{
		Pods: pods, Namespaces: map[string]Namespace{}, Policies: policies,
		podIndex: make(map[string]int, len(pods)), nsPods: map[string]bitset{},
		all: newBitset(len(pods)), named: map[namedKey]bitset{}, selCache: map[string]bitset{},
		in: make([][]int32, len(pods)), out: make([][]int32, len(pods)),
	}
	for _, ns := range namespaces {
		e.Namespaces[ns.Name] = ns
	}
	for i := range pods {
		e.indexPod(i)
	}
	for _, np := range policies {
		e.ensureNamespace(policyNamespace(np))
	}
	for _, np := range policies {
		e.addPolicy(np)
	}
	return e
}

func (e *Engine) indexPod(i int) {
	p := &e.Pods[i]
	e.podIndex[p.Key()] = i
	e.ensureNamespace(p.Namespace)
	for _, cp := range p.Ports {
		if cp.Name == "" {
			continue
		}
		k := namedKey{cp.Name, Port{cp.Port, cp.Protocol}}
		if e.named[k] == nil {
			e.named[k] = newBitset(len(e.Pods))
		}
		e.named[k].set(i)
	}
	if p.HostNetwork {
		return
	}
	e.all.set(i)
	e.nsPods[p.Namespace].set(i)
}

func (e *Engine) ensureNamespace(name string) {
	if _, ok := e.Namespaces[name]; !ok {
		e.Namespaces[name] = Namespace{Name: name, Labels: map[string]string{namespaceNameLabel: name}}
	}
	if e.nsPods[name] == nil {
		e.nsPods[name] = newBitset(len(e.Pods))
	}
}

func policyNamespace(np *networkingv1.NetworkPolicy) string {
	if np.Namespace == "" {
		return metav1.NamespaceDefault
	}
	return np.Namespace
}

// policyTypes applies the API's defaulting: Ingress always, Egress when the
// policy has egress rules.
func policyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

func (e *Engine) addPolicy(np *networkingv1.NetworkPolicy) {
	idx := int32(len(e.policies))
	c := compiledPolicy{np: np, ns: policyNamespace(np)}
	c.ingress, c.egress = policyTypes(np)
	c.selected = e.podSelector(&np.Spec.PodSelector, c.name()+" spec.podSelector").clone()
	c.selected.and(e.nsPods[c.ns])
	if c.ingress {
		for i, r := range np.Spec.Ingress {
			c.inRules = append(c.inRules, e.compileRule(&c, fmt.Sprintf("ingress[%d]", i), r.Ports, r.From))
		}
	}
	if c.egress {
		for i, r := range np.Spec.Egress {
			c.outRules = append(c.outRules, e.compileRule(&c, fmt.Sprintf("egress[%d]", i), r.Ports, r.To))
		}
	}
	for i := range e.Pods {
		if !c.selected.has(i) {
			continue
		}
		if c.ingress {
			e.in[i] = append(e.in[i], idx)
		}
		if c.egress {
			e.out[i] = append(e.out[i], idx)
		}
	}
	e.policies = append(e.policies, c)
}

func (e *Engine) compileRule(c *compiledPolicy, where string, ports []networkingv1.NetworkPolicyPort, peers []networkingv1.NetworkPolicyPeer) compiledRule {
	r := compiledRule{allPeers: len(peers) == 0}
	for _, p := range ports {
		r.ports = append(r.ports, compilePort(p))
	}
	for j, p := range peers {
		r.peers = append(r.peers, e.compilePeer(c, fmt.Sprintf("%s %s peer %d", c.name(), where, j), p))
	}
	return r
}

func compilePort(p networkingv1.NetworkPolicyPort) portSpec {
	s := portSpec{proto: corev1.ProtocolTCP}
	if p.Protocol != nil {
		s.proto = *p.Protocol
	}
	switch {
	case p.Port == nil:
		s.anyPort = true
	case p.Port.Type == intstr.String:
		s.name = p.Port.StrVal
	default:
		s.start, s.end = p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			s.end = *p.EndPort
		}
	}
	return s
}

func (e *Engine) compilePeer(c *compiledPolicy, where string, p networkingv1.NetworkPolicyPeer) compiledPeer {
	out := compiledPeer{spec: p, pods: newBitset(len(e.Pods))}
	if p.IPBlock != nil {
		b, err := parseIPBlock(p.IPBlock)
		if err != nil {
			e.Problems = append(e.Problems, fmt.Sprintf("%s: %v", where, err))
			return out
		}
		out.block = b
		for i := range e.Pods {
			for _, a := range e.Pods[i].IPs {
				if b.contains(a) {
					out.pods.set(i)
					break
				}
			}
		}
		return out
	}
	if p.PodSelector == nil && p.NamespaceSelector == nil {
		e.Problems = append(e.Problems, where+": peer has no selector and no ipBlock")
		return out
	}
	pods := e.all
	if p.PodSelector != nil {
		pods = e.podSelector(p.PodSelector, where+" podSelector")
	}
	copy(out.pods, pods)
	out.pods.and(e.namespaceSet(c.ns, p.NamespaceSelector, where))
	return out
}

// namespaceSet returns the pods of the namespaces a peer's namespaceSelector
// admits; a nil selector means the policy's own namespace.
func (e *Engine) namespaceSet(own string, sel *metav1.LabelSelector, where string) bitset {
	if sel == nil {
		return e.nsPods[own]
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		e.Problems = append(e.Problems, fmt.Sprintf("%s namespaceSelector: %v", where, err))
		return newBitset(len(e.Pods))
	}
	key := "ns:" + s.String()
	if b, ok := e.selCache[key]; ok {
		return b
	}
	b := newBitset(len(e.Pods))
	for name, ns := range e.Namespaces {
		if s.Matches(labels.Set(ns.Labels)) {
			b.or(e.nsPods[name])
		}
	}
	e.selCache[key] = b
	return b
}

// podSelector returns the pods, in any namespace, whose labels a selector
// matches. Results are cached by the selector's canonical form, so a selector
// shared by many policies is evaluated once per pod.
func (e *Engine) podSelector(sel *metav1.LabelSelector, where string) bitset {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		e.Problems = append(e.Problems, fmt.Sprintf("%s: %v", where, err))
		return newBitset(len(e.Pods))
	}
	key := "pod:" + s.String()
	if b, ok := e.selCache[key]; ok {
		return b
	}
	b := newBitset(len(e.Pods))
	for i := range e.Pods {
		if e.all.has(i) && s.Matches(labels.Set(e.Pods[i].Labels)) {
			b.set(i)
		}
	}
	e.selCache[key] = b
	return b
}

func parseIPBlock(b *networkingv1.IPBlock) (*ipBlock, error) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return nil, fmt.Errorf("ipBlock cidr: %w", err)
	}
	out := &ipBlock{cidr: cidr.Masked()}
	for _, x := range b.Except {
		p, err := netip.ParsePrefix(x)
		if err != nil {
			return nil, fmt.Errorf("ipBlock except: %w", err)
		}
		out.except = append(out.except, p.Masked())
	}
	return out, nil
}
