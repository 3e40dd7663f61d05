package nodenet

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/fix"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// Path is one connection from a pod on the node towards a destination, as
// far as the node's own settings decide its fate.
type Path struct {
	Src, Dst netip.Addr
	// DstNet is the destination network named in fixes (a peer node's pod
	// CIDR, the external subnet); "" means Dst/32.
	DstNet string
	Proto  string // tcp, udp, icmp
	DPort  int
	// OffCluster says the destination is outside the cluster, so the pod's
	// address must be translated on the way out.
	OffCluster bool
	// AllowDefault lets a default route count as a route to Dst (external
	// destinations); a pod CIDR reached by the default route is unrouted.
	AllowDefault bool
	// Via is the gateway a good route to DstNet uses, for the fix; "" unknown.
	Via string
}

func (p Path) dstNet() string {
	if p.DstNet != "" {
		return p.DstNet
	}
	return p.Dst.String() + "/32"
}

// Explain walks p on node n in the order the kernel meets it: forwarding,
// the route, the FORWARD chain and, off the cluster, source NAT. It returns
// the first fact that breaks the path, or false when every fact it could
// read is right (the facts that could not be read are in n.Facts.Errors).
func Explain(n Node, p Path) (model.Finding, bool) {
	if f := IPForward(n); f.Status == model.StatusFail {
		return f, true
	}
	if f, broken := Route(n, p); broken {
		return f, true
	}
	if f, broken := Forward(n, p); broken {
		return f, true
	}
	if p.OffCluster {
		if f, broken := Masquerade(n, p); broken {
			return f, true
		}
	}
	return model.Finding{}, false
}

// Route reports a node with no usable route to p.Dst.
func Route(n Node, p Path) (model.Finding, bool) {
	if len(n.Facts.Routes) == 0 {
		return model.Finding{}, false
	}
	r, found := n.Facts.RouteTo(p.Dst)
	if found && !r.Reject && (p.AllowDefault || r.Dst != "0.0.0.0/0") {
		return model.Finding{}, false
	}
	have := "no route at all"
	got := "no route"
	if found {
		have, got = "only the route `"+r.String()+"`", r.String()
	}
	net := p.dstNet()
	f := n.finding(IDNoRoute, model.StatusFail, fmt.Sprintf("Node %s has no route to %s", n.Name, net),
		fmt.Sprintf("node agent on %s: ip route get %s → %s", n.Name, p.Dst, got))
	f.RootCause = fmt.Sprintf("Node %s has %s for %s, so the node and its pods cannot send to %s.", n.Name, have, p.Dst, net)
	if p.Via != "" {
		f.Fixes = fix.Route(n.Name, net, p.Via)
	} else {
		f.Fixes = []model.Fix{{Description: fmt.Sprintf("Add a route to %s through the gateway that leads to it (replace <gateway>; no node that reaches it showed its route):", net),
			Node: n.Name, Commands: []string{fmt.Sprintf("ip route replace %s via <gateway>", net)}}}
	}
	f.References = []string{refNetModel}
	return f.WithKey(net), true
}

// packet is p's first packet as it crosses n: in from the pod's side, out
// towards the destination.
func (n Node) packet(p Path) Packet {
	pkt := Packet{Src: p.Src, Dst: p.Dst, Proto: p.Proto, DPort: p.DPort}
	if r, ok := n.Facts.RouteTo(p.Src); ok {
		pkt.InIface = r.Iface
	}
	if r, ok := n.Facts.RouteTo(p.Dst); ok {
		pkt.OutIface = r.Iface
	}
	return pkt
}

// PodCIDR is the pod CIDR of n holding addr, else n's first, else addr/32.
func (n Node) PodCIDR(addr netip.Addr) string { return CIDRFor(n.PodCIDRs, addr) }

// CIDRFor is the CIDR of cidrs holding addr, else the first, else addr/32.
func CIDRFor(cidrs []string, addr netip.Addr) string {
	for _, c := range cidrs {
		if pf, err := netip.ParsePrefix(c); err == nil && pf.Contains(addr) {
			return c
		}
	}
	if len(cidrs) > 0 {
		return cidrs[0]
	}
	return addr.String() + "/32"
}

// Forward reports a FORWARD chain that drops p.
func Forward(n Node, p Path) (model.Finding, bool) {
	if n.Facts.IPTables == "" {
		return model.Finding{}, false
	}
	pkt := n.packet(p)
	v := n.table().Eval("filter", "FORWARD", pkt)
	if !v.Dropped() {
		return model.Finding{}, false
	}
	if f, ok := felixForward(n, p, pkt, v); ok {
		return f, true
	}
	cidrs := n.PodCIDRs
	if len(cidrs) == 0 {
		cidrs = []string{n.PodCIDR(p.Src)}
	}
	what, ev := "the FORWARD chain's policy DROP, with no rule accepting it", fmt.Sprintf("node agent on %s: iptables-save -t filter → :FORWARD %s and no rule accepts %s → %s", n.Name, v.Target, p.Src, p.Dst)
	qual := "policy"
	if v.Rule != "" {
		what, qual = fmt.Sprintf("the rule `%s` in chain %s", v.Rule, v.Chain), v.Rule
		ev = fmt.Sprintf("node agent on %s: iptables-save -t filter → %s → %s meets `%s` (chain %s)", n.Name, p.Src, p.Dst, v.Rule, v.Chain)
	}
	f := n.finding(IDForwardDrop, model.StatusFail, fmt.Sprintf("Node %s drops forwarded pod traffic", n.Name), ev)
	f.RootCause = fmt.Sprintf("Node %s drops pod traffic it forwards (pod CIDR %s) by %s.", n.Name, strings.Join(cidrs, ","), what)
	var rules []fix.Rule
	for _, c := range cidrs {
		rules = append(rules, fix.Rule{Chain: "FORWARD", Spec: "-s " + c + " -j ACCEPT", Insert: true},
			fix.Rule{Chain: "FORWARD", Spec: "-d " + c + " -j ACCEPT", Insert: true})
	}
	f.Fixes = fix.IPTables(n.Name, "forward-accept-pods", "Accept forwarded pod traffic in FORWARD", rules...)
	f.Fixes = append(f.Fixes, model.Fix{Description: "If the CNI installs these rules itself, restart its agent pod on node " + n.Name + " instead (a firewalld reload is the usual cause of lost CNI rules)."})
	f.References = []string{refNetModel}
	return f.WithKey(qual), true
}

// Masquerade reports pod traffic to an off-cluster p.Dst that leaves n
// without source NAT.
func Masquerade(n Node, p Path) (model.Finding, bool) {
	if n.Facts.IPTables == "" {
		return model.Finding{}, false
	}
	pkt := n.packet(p)
	t := n.table()
	v := t.Eval("nat", "POSTROUTING", pkt)
	if v.NATed() {
		return model.Finding{}, false
	}
	if v.Exempt == "" && t.HasChain("nat", chainFelixNATOut) {
		return calicoMasquerade(n, p, pkt, v), true
	}
	src, dst := n.PodCIDR(p.Src), p.dstNet()
	fixes := fixRuleMasq(n.Name, src, dst)
	var f model.Finding
	if v.Exempt != "" {
		f = n.finding(IDMasqueradeExempt, model.StatusFail, fmt.Sprintf("Node %s exempts pod traffic to %s from source NAT", n.Name, dst),
			fmt.Sprintf("node agent on %s: iptables-save -t nat → %s → %s is exempted from NAT by `%s` (chain %s)", n.Name, p.Src, p.Dst, v.Exempt, v.ExemptChain))
		f.RootCause = fmt.Sprintf("In nat POSTROUTING on node %s, chain %s lets pod traffic from %s to %s leave with the pod's address (`%s`), and replies to pod addresses have no route back from there.", n.Name, v.ExemptChain, src, dst, v.Exempt)
		if isMasqAgent(v.ExemptChain) {
			fixes = append([]model.Fix{{Description: "Remove the target network from ip-masq-agent's nonMasqueradeCIDRs, then check the agent's config:",
				Commands: []string{"kubectl -n kube-system edit configmap ip-masq-agent", "netsleuth check --probe ipmasq"}}}, fixes...)
		}
	} else {
		f = n.finding(IDNoMasquerade, model.StatusFail, fmt.Sprintf("No source NAT on node %s for pod traffic to %s", n.Name, dst),
			fmt.Sprintf("node agent on %s: iptables-save -t nat → no MASQUERADE or SNAT rule in POSTROUTING matches %s → %s (out via %s)", n.Name, p.Src, p.Dst, orUnknown(pkt.OutIface)))
		f.RootCause = fmt.Sprintf("No MASQUERADE or SNAT rule on node %s covers pod CIDR %s → %s, so pod packets leave with pod addresses and the replies have no route back to them.", n.Name, src, dst)
	}
	f.Fixes, f.References = fixes, []string{refMasq}
	return f.WithKey(src + "->" + dst), true
}

// fixRuleMasq is the rule on node that masquerades src → dst, then the
// CNIs' own ways to do it.
func fixRuleMasq(node, src, dst string) []model.Fix {
	rule := fix.Rule{Table: "nat", Chain: "POSTROUTING", Spec: fmt.Sprintf("-s %s -d %s -j MASQUERADE", src, dst)}
	fixes := fix.IPTables(node, "masquerade-"+src+"-to-"+dst, fmt.Sprintf("Masquerade pod traffic from %s to %s", src, dst), rule)
	return append(fixes, model.Fix{Description: "Or let the CNI masquerade: Calico IPPool natOutgoing: true; Flannel --ip-masq; the bridge plugin ipMasq: true; " +
		"with ip-masq-agent, keep the target out of nonMasqueradeCIDRs. Egress NetworkPolicies and the target then see the node's address, not the pod's."})
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown interface"
	}
	return s
}

// RouteText renders a route lookup for evidence.
func RouteText(r ops.Route, found bool) string {
	if !found {
		return "no route"
	}
	return r.String()
}

// NodeFrom builds a Node from a node agent's facts, the node's pod CIDRs
// and what the cluster says of its CNI.
func NodeFrom(name string, podCIDRs []string, facts agent.NodeFacts, cni kube.CNI) Node {
	return Node{Name: name, PodCIDRs: podCIDRs, Facts: facts, CNI: cni}
}
