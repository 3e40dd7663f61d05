package main

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Ruleset is the rendered data plane: our chains (dispatch chain first) and
// their rules as iptables-restore "-A" lines.
type Ruleset struct {
	Chains   []string
	Rules    []string
	Stats    Stats
	Warnings []string
}

// Stats summarises a render for logging.
type Stats struct {
	Policies        int
	IngressIsolated int
	EgressIsolated  int
	Rules           int
}

// direction holds what differs between ingress and egress rendering.
type direction struct {
	name string // "ingress" or "egress"
	kind string // chain kind letter
	peer string // iptables flag matching the peer address
	self string // iptables flag matching the policed pod
	mark int
}

var (
	ingress = direction{name: "ingress", kind: "I", peer: "-s", self: "-d", mark: ingressMark}
	egress  = direction{name: "egress", kind: "E", peer: "-d", self: "-s", mark: egressMark}
)

func (d direction) allow() string {
	return fmt.Sprintf("-j MARK --set-xmark %#x/%#x", d.mark, d.mark)
}

type renderer struct {
	in       Input
	nsLabels map[string]labels.Set
	peers    []Pod // pods usable as peers: pod-network pods with an IP, sorted
	policies []networkingv1.NetworkPolicy
	out      Ruleset
	seen     map[string]bool
	declared map[string]bool
}

// Render turns cluster state into the ruleset for in.Node. It is pure: same
// input, same output, no I/O.
func Render(in Input) Ruleset {
	r := newRenderer(in)
	fwd := fwdChain(in.Prefix)
	r.declare(fwd)
	r.add(fwd, "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
	r.add(fwd, fmt.Sprintf("-j MARK --set-xmark 0x0/%#x", markMask))
	for _, d := range []direction{egress, ingress} {
		for _, p := range r.peers {
			if p.Node != in.Node {
				continue
			}
			pols := r.selecting(p, d)
			if len(pols) == 0 {
				continue
			}
			r.isolate(fwd, p, d, pols)
		}
	}
	// Clear again so our bits never leak past FORWARD (added raw: add()
	// would drop it as a duplicate of the first clear).
	r.out.Rules = append(r.out.Rules, fmt.Sprintf("-A %s -j MARK --set-xmark 0x0/%#x", fwd, markMask))
	r.out.Stats.Policies = len(r.policies)
	r.out.Stats.Rules = len(r.out.Rules)
	return r.out
}

func newRenderer(in Input) *renderer {
	r := &renderer{
		in:       in,
		nsLabels: map[string]labels.Set{},
		seen:     map[string]bool{},
		declared: map[string]bool{},
	}
	for _, ns := range in.Namespaces {
		set := labels.Set{}
		for k, v := range ns.Labels {
			set[k] = v
		}
		r.nsLabels[ns.Name] = set
	}
	for _, p := range in.Pods {
		if p.HostNetwork || p.IP == "" {
			continue // hostNetwork pods are never policed and never peers
		}
		r.peers = append(r.peers, p)
	}
	sort.Slice(r.peers, func(i, j int) bool { return r.peers[i].Key() < r.peers[j].Key() })
	r.policies = append(r.policies, in.Policies...)
	sort.Slice(r.policies, func(i, j int) bool {
		a, b := r.policies[i], r.policies[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	return r
}

func (r *renderer) declare(chain string) {
	if !r.declared[chain] {
		r.declared[chain] = true
		r.out.Chains = append(r.out.Chains, chain)
	}
}

// add appends "-A chain parts..." once; duplicates are dropped.
func (r *renderer) add(chain string, parts ...string) {
	fields := []string{"-A", chain}
	for _, p := range parts {
		if p != "" {
			fields = append(fields, p)
		}
	}
	line := strings.Join(fields, " ")
	if !r.seen[line] {
		r.seen[line] = true
		r.out.Rules = append(r.out.Rules, line)
	}
}

func (r *renderer) warnf(format string, args ...any) {
	r.out.Warnings = append(r.out.Warnings, fmt.Sprintf(format, args...))
}

// policyTypes applies the API's defaulting: Ingress always, Egress only when
// egress rules are present.
func policyTypes(pol *networkingv1.NetworkPolicy) (ing, eg bool) {
	if len(pol.Spec.PolicyTypes) == 0 {
		return true, len(pol.Spec.Egress) > 0
	}
	for _, t := range pol.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ing = true
		case networkingv1.PolicyTypeEgress:
			eg = true
		}
	}
	return ing, eg
}

func (r *renderer) selector(ls *metav1.LabelSelector, what string) labels.Selector {
	if ls == nil {
		return labels.Everything()
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		r.warnf("%s: invalid selector, matching nothing: %v", what, err)
		return labels.Nothing()
	}
	return sel
}

// selecting lists the policies that select p and have direction d.
func (r *renderer) selecting(p Pod, d direction) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for i := range r.policies {
		pol := &r.policies[i]
		if pol.Namespace != p.Namespace {
			continue
		}
		ing, eg := policyTypes(pol)
		if (d == ingress && !ing) || (d == egress && !eg) {
			continue
		}
		if r.selector(&pol.Spec.PodSelector, pol.Namespace+"/"+pol.Name).Matches(labels.Set(p.Labels)) {
			out = append(out, pol)
		}
	}
	return out
}

// isolate renders p's policy chain for d and hooks it into the dispatch chain.
func (r *renderer) isolate(fwd string, p Pod, d direction, pols []*networkingv1.NetworkPolicy) {
	chain := chainName(r.in.Prefix, d.kind, p.Key(), 10)
	r.declare(chain)
	if d == ingress {
		r.out.Stats.IngressIsolated++
	} else {
		r.out.Stats.EgressIsolated++
	}
	for _, pol := range pols {
		if d == ingress {
			for i, rule := range pol.Spec.Ingress {
				r.renderRule(chain, p, d, pol, i, rule.From, rule.Ports)
			}
		} else {
			for i, rule := range pol.Spec.Egress {
				r.renderRule(chain, p, d, pol, i, rule.To, rule.Ports)
			}
		}
	}
	self := d.self + " " + p.IP + "/32"
	r.add(fwd, self, "-j", chain)
	r.add(fwd, self, fmt.Sprintf("-m mark ! --mark %#x/%#x", d.mark, d.mark),
		fmt.Sprintf("-m comment --comment %q", p.Key()+" "+d.name), "-j DROP")
}

// renderRule renders one ingress/egress rule of pol for the policed pod.
func (r *renderer) renderRule(chain string, target Pod, d direction, pol *networkingv1.NetworkPolicy,
	ruleIdx int, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) {
	what := fmt.Sprintf("%s/%s %s[%d]", pol.Namespace, pol.Name, d.name, ruleIdx)
	if len(peers) == 0 {
		r.anyPeer(chain, target, d, ports, what)
		return
	}
	for i, peer := range peers {
		switch {
		case peer.IPBlock != nil:
			key := fmt.Sprintf("%s|%s|%s|%d", target.Key(), what, peer.IPBlock.CIDR, i)
			r.ipBlockPeer(chain, target, d, peer.IPBlock, ports, key, what)
		case peer.PodSelector != nil || peer.NamespaceSelector != nil:
			for _, pp := range r.selectPeers(pol.Namespace, peer, what) {
				resolveOn := target
				if d == egress {
					resolveOn = pp // egress named ports resolve on the destination
				}
				for _, m := range r.portMatches(ports, resolveOn.Ports, false, what) {
					r.add(chain, d.peer+" "+pp.IP+"/32", m, d.allow())
				}
			}
		default:
			r.warnf("%s: empty peer ignored", what)
		}
	}
}

// anyPeer renders a rule with no from/to: every address matches.
func (r *renderer) anyPeer(chain string, target Pod, d direction, ports []networkingv1.NetworkPolicyPort, what string) {
	if d == ingress {
		for _, m := range r.portMatches(ports, target.Ports, false, what) {
			r.add(chain, m, d.allow())
		}
		return
	}
	for _, m := range r.portMatches(ports, nil, true, what) {
		r.add(chain, m, d.allow())
	}
	r.namedToPods(chain, ports, func(netip.Addr) bool { return true }, what)
}

// namedToPods renders egress named ports for every peer pod whose IP passes
// within: a named port can only be resolved on a destination that is a pod.
func (r *renderer) namedToPods(chain string, ports []networkingv1.NetworkPolicyPort, within func(netip.Addr) bool, what string) {
	if !hasNamed(ports) {
		return
	}
	for _, pp := range r.peers {
		a, err := netip.ParseAddr(pp.IP)
		if err != nil || !within(a) {
			continue
		}
		for _, m := range r.namedMatches(ports, pp.Ports, what) {
			r.add(chain, "-d "+pp.IP+"/32", m, egress.allow())
		}
	}
}

// ipBlockPeer renders an ipBlock through a sub-chain so that except ranges
// RETURN before the allow mark is set.
func (r *renderer) ipBlockPeer(chain string, target Pod, d direction, b *networkingv1.IPBlock,
	ports []networkingv1.NetworkPolicyPort, key, what string) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !cidr.Addr().Is4() {
		r.warnf("%s: ipBlock %q is not an IPv4 CIDR, ignored", what, b.CIDR)
		return
	}
	cidr = cidr.Masked()
	sub := chainName(r.in.Prefix, "B", key, 12)
	r.declare(sub)
	r.add(chain, d.peer+" "+cidr.String(), "-j "+sub)
	var excepts []netip.Prefix
	for _, e := range b.Except {
		ep, err := netip.ParsePrefix(e)
		if err != nil || !ep.Addr().Is4() {
			r.warnf("%s: ipBlock except %q is not an IPv4 CIDR, ignored", what, e)
			continue
		}
		ep = ep.Masked()
		excepts = append(excepts, ep)
		r.add(sub, d.peer+" "+ep.String(), "-j RETURN")
	}
	if d == ingress {
		for _, m := range r.portMatches(ports, target.Ports, false, what) {
			r.add(sub, m, d.allow())
		}
		return
	}
	for _, m := range r.portMatches(ports, nil, true, what) {
		r.add(sub, m, d.allow())
	}
	r.namedToPods(sub, ports, func(a netip.Addr) bool {
		if !cidr.Contains(a) {
			return false
		}
		for _, e := range excepts {
			if e.Contains(a) {
				return false
			}
		}
		return true
	}, what)
}

// selectPeers resolves a pod/namespace selector peer to pods anywhere in the
// cluster (any node).
func (r *renderer) selectPeers(polNS string, peer networkingv1.NetworkPolicyPeer, what string) []Pod {
	nsSel := r.selector(peer.NamespaceSelector, what+" namespaceSelector")
	podSel := r.selector(peer.PodSelector, what+" podSelector")
	var out []Pod
	for _, p := range r.peers {
		if peer.NamespaceSelector == nil {
			if p.Namespace != polNS {
				continue
			}
		} else if !nsSel.Matches(r.namespaceLabels(p.Namespace)) {
			continue
		}
		if podSel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// namespaceLabels returns ns's labels, always including the automatic
// kubernetes.io/metadata.name label.
func (r *renderer) namespaceLabels(ns string) labels.Set {
	set := labels.Set{}
	for k, v := range r.nsLabels[ns] {
		set[k] = v
	}
	set["kubernetes.io/metadata.name"] = ns
	return set
}
