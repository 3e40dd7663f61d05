// Package nodenet is the one diagnosis of a node's network facts: forwarding,
// bridge netfilter, conntrack, the FORWARD chain, routes and source NAT, read
// by a node agent (agent.NodeFacts). Every probe that meets one of these facts
// asks this package, so the fact has one finding ID, one root cause and one
// fix wherever it is found; probes cite the finding as the cause of their own.
package nodenet

import (
	"fmt"
	"strconv"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/fix"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// Finding IDs of the shared node diagnosis; a stable contract for scripts.
const (
	IDIPForward        = "node.ip-forward"
	IDBridgeNF         = "node.bridge-nf-call-iptables"
	IDConntrack        = "node.conntrack"
	IDForwardDrop      = "node.forward-drop"
	IDNoRoute          = "node.no-route"
	IDNoMasquerade     = "node.no-masquerade"
	IDMasqueradeExempt = "node.masquerade-exempt"
)

// Conntrack thresholds: share of nf_conntrack_max in use.
const (
	ConntrackWarn = 0.80
	ConntrackFail = 0.95
)

const (
	refForwarding = "https://kubernetes.io/docs/setup/production-environment/container-runtimes/#prerequisite-ipv4-forwarding-optional"
	refNetModel   = "https://kubernetes.io/docs/concepts/services-networking/#the-kubernetes-network-model"
	refMasq       = "https://kubernetes.io/docs/tasks/administer-cluster/ip-masq-agent/"
)

// Node is one node as its node agent saw it.
type Node struct {
	Name string
	// PodCIDRs are the node's own pod CIDRs (spec.podCIDRs).
	PodCIDRs []string
	Facts    agent.NodeFacts
	// CNI is what the cluster says of its CNI (Calico's pools name the NAT
	// fix); the zero value when unknown.
	CNI kube.CNI
}

func (n Node) subject() *model.Subject { return &model.Subject{Kind: "Node", Name: n.Name} }

// cat is the evidence line for one sysctl file.
func (n Node) cat(path string) string {
	v, ok := n.Facts.Sysctl(path)
	if !ok {
		v = "absent"
	}
	return fmt.Sprintf("node agent on %s: cat %s → %s", n.Name, path, v)
}

func (n Node) finding(id string, st model.Status, title string, ev ...string) model.Finding {
	f := model.Finding{ID: id, Status: st, Subject: n.subject(), Title: title, Evidence: append(ev, n.Facts.Errors...)}
	return f.WithKey("")
}

// IPForward is net.ipv4.ip_forward on n.
func IPForward(n Node) model.Finding {
	v, ok := n.Facts.Sysctl(agent.SysIPForward)
	ev := n.cat(agent.SysIPForward)
	switch {
	case !ok:
		f := n.finding(IDIPForward, model.StatusError, "net.ipv4.ip_forward could not be read on node "+n.Name, ev)
		f.RootCause = fmt.Sprintf("The node agent on %s could not read %s, so whether the node forwards pod traffic is unknown.", n.Name, agent.SysIPForward)
		f.Fixes = []model.Fix{{Description: "Read it on the node:", Node: n.Name, Commands: []string{"sysctl net.ipv4.ip_forward"}}}
		return f
	case v == "1":
		return n.finding(IDIPForward, model.StatusPass, "net.ipv4.ip_forward is 1 on node "+n.Name, ev)
	}
	f := n.finding(IDIPForward, model.StatusFail, fmt.Sprintf("net.ipv4.ip_forward is %s on node %s: the node does not route pod traffic", v, n.Name), ev)
	f.RootCause = fmt.Sprintf("net.ipv4.ip_forward is %s on node %s, so the kernel drops packets it should route between the node's pods and everything off the node: other nodes' pods, Services backed elsewhere and external networks.", v, n.Name)
	f.Fixes = fix.Sysctl(n.Name, "net.ipv4.ip_forward", "1")
	f.References = []string{refForwarding}
	return f
}

// BridgeNF is net.bridge.bridge-nf-call-iptables (and br_netfilter) on n.
func BridgeNF(n Node) model.Finding {
	v, ok := n.Facts.Sysctl(agent.SysBridgeNF)
	ev := n.cat(agent.SysBridgeNF)
	const key = "net.bridge.bridge-nf-call-iptables"
	switch {
	case ok && v == "1":
		return n.finding(IDBridgeNF, model.StatusPass, key+" is 1 on node "+n.Name, ev)
	case !ok:
		f := n.finding(IDBridgeNF, model.StatusWarn, "br_netfilter is not loaded on node "+n.Name, ev)
		f.RootCause = fmt.Sprintf("%s does not exist on node %s because br_netfilter is not loaded: with a bridge-based CNI (bridge, flannel, kubenet) traffic between pods on one bridge skips iptables, so Services and NetworkPolicies break for same-node pods (eBPF CNIs such as Cilium do not need it).", agent.SysBridgeNF, n.Name)
		f.Fixes = append([]model.Fix{fix.Module(n.Name, "br_netfilter")}, fix.Sysctl(n.Name, key, "1")...)
		return f
	}
	f := n.finding(IDBridgeNF, model.StatusFail, fmt.Sprintf("%s is %s on node %s", key, v, n.Name), ev)
	f.RootCause = fmt.Sprintf("%s is %s on node %s, so bridged pod traffic skips iptables: kube-proxy's Service DNAT and NetworkPolicy rules do not apply between pods on the same bridge.", key, v, n.Name)
	f.Fixes = fix.Sysctl(n.Name, key, "1")
	return f
}

// Conntrack is the conntrack table's use against its maximum on n.
func Conntrack(n Node) model.Finding {
	ev := []string{n.cat(agent.SysConntrackCnt), n.cat(agent.SysConntrackMax)}
	c, _ := n.Facts.Sysctl(agent.SysConntrackCnt)
	m, _ := n.Facts.Sysctl(agent.SysConntrackMax)
	cnt, err1 := strconv.Atoi(c)
	maxN, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || maxN <= 0 {
		return n.finding(IDConntrack, model.StatusSkip, "conntrack usage not readable on node "+n.Name+" (nf_conntrack not loaded?)", ev...)
	}
	ratio := float64(cnt) / float64(maxN)
	use := fmt.Sprintf("%d of %d entries (%.0f %%)", cnt, maxN, 100*ratio)
	title := "conntrack table on node " + n.Name + ": " + use
	if ratio < ConntrackWarn {
		return n.finding(IDConntrack, model.StatusPass, title, ev...)
	}
	f := n.finding(IDConntrack, model.StatusWarn, title, ev...)
	f.RootCause = fmt.Sprintf("The conntrack table on node %s holds %s, above %.0f %%: when it fills, the kernel drops new connections (\"nf_conntrack: table full, dropping packet\"), first seen as DNS and Service timeouts.", n.Name, use, 100*ConntrackWarn)
	if ratio >= ConntrackFail {
		f.Status = model.StatusFail
		f.RootCause = fmt.Sprintf("The conntrack table on node %s is nearly full (%s): the kernel drops new connections once it reaches nf_conntrack_max, so DNS lookups and Service connections from that node time out at random.", n.Name, use)
	}
	f.Fixes = conntrackFixes(n.Name, maxN)
	return f
}

func conntrackFixes(node string, maxN int) []model.Fix {
	out := fix.Sysctl(node, "net.netfilter.nf_conntrack_max", strconv.Itoa(2*maxN))
	out[0].Description += " (each entry costs about 300 bytes of kernel memory)"
	return append(out,
		model.Fix{Description: "kube-proxy sets nf_conntrack_max at start from conntrack.maxPerCore (default 32768 per core) and min; raise it there so a restart does not undo the change:",
			Commands: []string{"kubectl -n kube-system edit configmap kube-proxy   # conntrack: {maxPerCore: 65536}",
				"kubectl -n kube-system rollout restart ds/kube-proxy"}},
		model.Fix{Description: "Find who holds the entries (many short-lived DNS or UDP flows usually; NodeLocal DNS cache helps):", Node: node,
			Commands: []string{"conntrack -S", "conntrack -L -o extended | awk '{print $3, $7}' | sort | uniq -c | sort -rn | head",
				"dmesg | grep -i 'nf_conntrack: table full'"}})
}
