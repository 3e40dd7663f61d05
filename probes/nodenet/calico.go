package nodenet

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// Calico's felix on a node: its chains, its NAT and its health. felix
// (calico-node) programs iptables for every workload interface it knows
// (cali-FORWARD dispatches each interface to its cali-fw-/cali-tw- chains)
// and masquerades pod traffic leaving Calico's pools when an IPPool says
// natOutgoing (cali-nat-outgoing).

// IDFelixNotProgramming: felix's rules are on the node but felix is not
// keeping them current.
const IDFelixNotProgramming = "node.felix-not-programming"

const (
	refCalicoNAT    = "https://docs.tigera.io/calico/latest/networking/configuring/workloads-outside-cluster"
	refCalicoHealth = "https://docs.tigera.io/calico/latest/reference/felix/configuration"
)

// Felix chains.
const (
	chainFelixForward = "cali-FORWARD"
	chainFelixNATOut  = "cali-nat-outgoing"
	felixMasqSet      = "cali40masq-ipam-pools"
)

// table is n's iptables dump with its ipsets.
func (n Node) table() Table { return ParseTable(n.Facts.IPTables).WithIPSets(n.Facts.IPSets) }

// HasFelixRules reports whether felix's rules are on the node.
func (n Node) HasFelixRules() bool { return n.table().HasChain("filter", chainFelixForward) }

// walkedText renders the chains a verdict walked, for evidence.
func walkedText(v Verdict) string { return strings.Join(v.Walked, " → ") }

// felixChainKind says what a felix chain is, "" when it is not felix's.
func felixChainKind(chain string) string {
	switch {
	case strings.HasPrefix(chain, "cali-from-wl-dispatch") || strings.HasPrefix(chain, "cali-to-wl-dispatch"):
		return "dispatch"
	case strings.HasPrefix(chain, "cali-fw-") || strings.HasPrefix(chain, "cali-tw-") ||
		strings.HasPrefix(chain, "cali-pi-") || strings.HasPrefix(chain, "cali-po-") ||
		strings.HasPrefix(chain, "cali-pri-") || strings.HasPrefix(chain, "cali-pro-"):
		return "endpoint"
	case strings.HasPrefix(chain, "cali-"):
		return "felix"
	}
	return ""
}

// felixForward explains a FORWARD drop decided in one of felix's chains;
// ok is false for a drop that is not felix's.
func felixForward(n Node, p Path, pkt Packet, v Verdict) (model.Finding, bool) {
	ev := fmt.Sprintf("node agent on %s: iptables-save -t filter → %s → %s walks %s and meets `%s` (chain %s)", n.Name, p.Src, p.Dst, walkedText(v), v.Rule, v.Chain)
	switch felixChainKind(v.Chain) {
	case "dispatch":
		iface, dir := pkt.InIface, "from"
		if strings.HasPrefix(v.Chain, "cali-to-") {
			iface, dir = pkt.OutIface, "to"
		}
		f := n.finding(IDFelixNotProgramming, model.StatusFail, fmt.Sprintf("Felix on node %s has not programmed workload interface %s", n.Name, orUnknown(iface)), ev)
		f.RootCause = fmt.Sprintf("Felix (Calico) on node %s has no rules for workload interface %s, so its dispatch chain %s drops traffic %s it as an unknown interface: "+
			"felix is not running, not ready or behind there, and every pod started on %s since it stopped programming is cut off.", n.Name, orUnknown(iface), v.Chain, dir, n.Name)
		f.Fixes = FelixFixes(n.Name)
		f.References = []string{refCalicoHealth}
		return f, true
	case "endpoint":
		f := n.finding(IDForwardDrop, model.StatusFail, fmt.Sprintf("Felix on node %s drops %s → %s by policy", n.Name, p.Src, p.Dst), ev)
		f.RootCause = fmt.Sprintf("Felix (Calico) on node %s drops %s → %s in %s, a chain of a workload endpoint's policy: a NetworkPolicy, a Calico policy or the endpoint's profile does not allow this traffic.", n.Name, p.Src, p.Dst, v.Chain)
		f.Fixes = []model.Fix{{Description: "Ask netsleuth which policy decides it, and change that policy rather than the node's rules (felix rewrites its chains):",
			Commands: []string{fmt.Sprintf("netsleuth check --probe policy --from %s --to %s:%d", p.Src, p.Dst, max(p.DPort, 1)),
				"kubectl get networkpolicies -A", "kubectl get globalnetworkpolicies.crd.projectcalico.org,networkpolicies.crd.projectcalico.org -A"}}}
		return f.WithKey(v.Chain), true
	}
	return model.Finding{}, false
}

// FelixFixes restart calico-node (felix) on node and say how to see why it
// is not ready.
func FelixFixes(node string) []model.Fix {
	sel := "-l k8s-app=calico-node --field-selector spec.nodeName=" + node
	return []model.Fix{
		{Description: fmt.Sprintf("Restart calico-node on node %s (its DaemonSet starts a new one, which reprograms every endpoint), then check it becomes ready:", node),
			Commands: []string{"kubectl delete pods -A " + sel, "kubectl get pods -A -o wide " + sel}},
		{Description: "If it does not become ready, its readiness and felix's log say why (the datastore, iptables, or its health port):",
			Commands: []string{"kubectl describe pods -A " + sel, "kubectl logs -A " + sel + " -c calico-node --tail 100"}},
	}
}

// calicoMasquerade explains pod traffic to an off-cluster destination that
// felix's cali-nat-outgoing does not masquerade: which pool holds the
// source and what its natOutgoing says, with the pool fix first.
func calicoMasquerade(n Node, p Path, pkt Packet, v Verdict) model.Finding {
	src, dst := n.PodCIDR(p.Src), p.dstNet()
	set := "its members unknown (no ipset tool on the node)"
	if n.Facts.IPSets != "" {
		if has, known := ParseIPSets(n.Facts.IPSets).Has(felixMasqSet, p.Src); known {
			set = fmt.Sprintf("%s holds %s: %v", felixMasqSet, p.Src, has)
		}
	}
	f := n.finding(IDNoMasquerade, model.StatusFail, fmt.Sprintf("No source NAT on node %s for pod traffic to %s", n.Name, dst),
		fmt.Sprintf("node agent on %s: iptables-save -t nat → %s → %s (out via %s) walks %s and no MASQUERADE or SNAT rule matches; felix's %s masquerades only sources in IPPools with natOutgoing (ipset %s)",
			n.Name, p.Src, p.Dst, orUnknown(pkt.OutIface), walkedText(v), chainFelixNATOut, set))
	pool, inPool := n.CNI.Calico.PoolFor(p.Src)
	why := "no Calico IPPool with natOutgoing: true holds it"
	switch {
	case inPool && !pool.NATOutgoing:
		why = fmt.Sprintf("its IPPool %s (%s) has natOutgoing: false", pool.Name, pool.CIDR)
		f.Evidence = append(f.Evidence, fmt.Sprintf("IPPool %s (crd.projectcalico.org/v1): cidr %s, natOutgoing false", pool.Name, pool.CIDR))
	case n.CNI.Calico != nil && !inPool:
		why = "no Calico IPPool holds it"
	}
	f.RootCause = fmt.Sprintf("No MASQUERADE or SNAT rule on node %s covers pod CIDR %s → %s: felix (Calico) masquerades pod traffic in %s only for IPPools with natOutgoing, and %s, so pod packets leave with pod addresses and the replies have no route back to them.",
		n.Name, src, dst, chainFelixNATOut, why)
	f.Fixes = calicoNATFixes(n, p, pool, inPool)
	f.References = []string{refCalicoNAT, refMasq}
	return f.WithKey(src + "->" + dst)
}

func calicoNATFixes(n Node, p Path, pool kube.IPPool, inPool bool) []model.Fix {
	src, dst := n.PodCIDR(p.Src), p.dstNet()
	var out []model.Fix
	switch {
	case inPool:
		patch := `{"spec":{"natOutgoing":true}}`
		out = append(out, model.Fix{Description: fmt.Sprintf("Turn on natOutgoing in IPPool %s (%s); felix on every node then masquerades its pods' traffic leaving the pools:", pool.Name, pool.CIDR),
			Commands: []string{fmt.Sprintf("kubectl patch ippools.crd.projectcalico.org %s --type merge -p '%s'", pool.Name, patch)}},
			model.Fix{Description: "The same with calicoctl (or kubectl with the Calico API server, projectcalico.org/v3):",
				Commands: []string{fmt.Sprintf("calicoctl patch ippool %s -p '%s'", pool.Name, patch)}})
	default:
		cidr := src
		if pf, err := netip.ParsePrefix(src); err == nil {
			cidr = pf.Masked().String()
		}
		out = append(out, model.Fix{Description: fmt.Sprintf("Create an IPPool with natOutgoing for the pods of %s (or set natOutgoing in the pool that should hold them: kubectl get ippools.crd.projectcalico.org):", cidr),
			Manifest: fmt.Sprintf("apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata:\n  name: netsleuth-nat-%s\nspec:\n  cidr: %s\n  natOutgoing: true\n  ipipMode: Never\n  vxlanMode: Never\n",
				strings.NewReplacer(".", "-", "/", "-").Replace(cidr), cidr)})
	}
	return append(out, fixRuleMasq(n.Name, src, dst)...)
}

// FelixKnows reports the workload interface addr is routed to on n, and
// whether felix's dispatch chains send it to its policy chains (felix has
// programmed it).
func FelixKnows(n Node, addr netip.Addr) (iface string, known bool) {
	r, ok := n.Facts.RouteTo(addr)
	if !ok || !strings.HasPrefix(r.Iface, "cali") {
		return r.Iface, false
	}
	_, rules := agent.ParseIPTables(n.Facts.IPTables)
	for _, rule := range rules {
		if rule.Table == "filter" && strings.HasPrefix(rule.Chain, "cali-from-wl-dispatch") && rule.Args["-i"] == r.Iface {
			return r.Iface, true
		}
	}
	return r.Iface, false
}

// FelixHealthOp is the node agent's request for felix's readiness on the
// node's loopback.
func FelixHealthOp(port int) ops.Op {
	return ops.Op{Kind: ops.HTTP, Target: "127.0.0.1", Port: port, Path: "/readiness", TimeoutMs: 2000}
}

// FelixState is felix's state on one node.
type FelixState string

// The states Felix tells apart.
const (
	FelixReady  FelixState = "ready"  // its health port says ready
	FelixAbsent FelixState = "absent" // no felix rules on the node and nothing answers its health port
	FelixStale  FelixState = "stale"  // its rules are on the node, but it is not running, not answering or not ready
	// FelixUnknown: the node agent could not tell.
	FelixUnknown FelixState = "unknown"
)

// Felix is felix on a node as its node agent saw it.
type Felix struct {
	Node     string
	State    FelixState
	Detail   string   // one phrase: "not running: 127.0.0.1:9099 refused"
	Evidence []string // the facts, for findings
}

// FelixOn judges felix on n from its rules and the answer of its health
// port (FelixHealthOp(port)).
func FelixOn(n Node, port int, health ops.Result) Felix {
	rules := n.HasFelixRules()
	have := "no felix chains (no cali-FORWARD in filter)"
	if rules {
		have = "felix's chains are there (cali-FORWARD in filter)"
	}
	answer := string(health.Outcome)
	if health.Outcome == ops.OK {
		answer = fmt.Sprintf("HTTP %d", health.Status)
	}
	ev := []string{
		fmt.Sprintf("node agent on %s: iptables-save → %s", n.Name, have),
		fmt.Sprintf("node agent on %s: GET http://127.0.0.1:%d/readiness (felix's health port) → %s", n.Name, port, answer),
	}
	f := Felix{Node: n.Name, Evidence: ev}
	switch {
	case health.Outcome == ops.OK && health.Status == 200:
		f.State, f.Detail = FelixReady, "ready"
	case health.Outcome == ops.OK:
		f.State, f.Detail = FelixStale, fmt.Sprintf("running but not ready (its health port answers HTTP %d)", health.Status)
	case health.Outcome == ops.Refused:
		f.State, f.Detail = FelixStale, fmt.Sprintf("not running (nothing listens on its health port %d)", port)
	default:
		f.State, f.Detail = FelixStale, fmt.Sprintf("running but not answering (its health port %d: %s)", port, health.Outcome)
	}
	if !rules && health.Outcome != ops.OK {
		f.State = FelixAbsent
	}
	return f
}

// FelixNotProgramming is the node finding for felix in state stale.
func FelixNotProgramming(f Felix) model.Finding {
	n := Node{Name: f.Node}
	fd := n.finding(IDFelixNotProgramming, model.StatusFail, fmt.Sprintf("Felix on node %s is %s", f.Node, f.Detail), f.Evidence...)
	fd.RootCause = fmt.Sprintf("Felix (Calico) on node %s is %s, while the rules it wrote earlier are still in place: policies, pods and endpoints changed since are not programmed there, "+
		"so new pods are cut off (felix drops traffic of interfaces it does not know) and policy changes do not take effect.", f.Node, f.Detail)
	fd.Fixes = FelixFixes(f.Node)
	fd.References = []string{refCalicoHealth}
	return fd
}
