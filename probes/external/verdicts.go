package external

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent"
)

// podFails explains a target the node reaches and its pods do not: the
// node's forwarding, FORWARD chain or source NAT, in the order packets meet them.
func podFails(in Input, p Probe) model.Finding {
	facts, ok := in.Facts[p.Node]
	ev := evidence(p)
	if !ok {
		return podBlocked(p, ev, "the node agent could not read the node's settings")
	}
	ev = append(ev, facts.Errors...)
	if v, ok := facts.Sysctl(agent.SysIPForward); ok {
		ev = append(ev, fmt.Sprintf("node agent on %s: cat %s → %s", p.Node, agent.SysIPForward, v))
		if v == "0" {
			return ipForwardOff(p, ev)
		}
	}
	if facts.IPTables == "" {
		return podBlocked(p, ev, "iptables-save could not be read on the node")
	}
	pol, rules := agent.ParseIPTables(facts.IPTables)
	if pol["filter/FORWARD"] == "DROP" && !forwardAccepts(rules) {
		ev = append(ev, fmt.Sprintf("node agent on %s: iptables-save -t filter → :FORWARD DROP and no ACCEPT rule", p.Node))
		return forwardDrop(in, p, ev)
	}
	src, _ := netip.ParseAddr(p.Pod.IP)
	out := ""
	if r, ok := facts.RouteTo(p.Target.Addr); ok {
		out = r.Iface
	}
	v := EvalPostrouting(rules, Packet{Src: src, Dst: p.Target.Addr, OutIface: out})
	switch {
	case v.Masqueraded:
		ev = append(ev, fmt.Sprintf("node agent on %s: iptables-save -t nat → pod traffic to %s is masqueraded by `%s`", p.Node, p.Target.Addr, v.Rule))
		return podBlocked(p, ev, "the node forwards and masquerades pod traffic to the target")
	case v.Rule != "":
		ev = append(ev, fmt.Sprintf("node agent on %s: iptables-save -t nat → %s exempts %s → %s from NAT: `%s`", p.Node, v.Chain, p.Pod.IP, p.Target.Addr, v.Rule))
		return masqExempt(in, p, v, ev)
	}
	ev = append(ev, fmt.Sprintf("node agent on %s: iptables-save -t nat → no MASQUERADE or SNAT rule in POSTROUTING matches %s → %s", p.Node, p.Pod.IP, p.Target.Addr))
	return noMasquerade(in, p, ev)
}

func forwardAccepts(rules []agent.Rule) bool {
	for _, r := range rules {
		if r.Table == "filter" && r.Chain == "FORWARD" && r.Args["-j"] == "ACCEPT" {
			return true
		}
	}
	return false
}

func ipForwardOff(p Probe, ev []string) model.Finding {
	cmds := []string{"sysctl -w net.ipv4.ip_forward=1"}
	persist := []string{"echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/99-kubernetes.conf", "sysctl --system"}
	return model.Finding{ID: IDIPForward, Status: model.StatusFail, Subject: subject(p),
		Title:     fmt.Sprintf("Pods on %s cannot reach %s: the node does not forward", p.Node, p.Target.Name),
		RootCause: fmt.Sprintf("net.ipv4.ip_forward is 0 on node %s, so it drops pod packets instead of routing them to %s (the node itself reaches it).", p.Node, p.Target.Addr),
		Evidence:  ev,
		Fixes: []model.Fix{
			{Description: "Turn forwarding on, on node " + p.Node + ":", Commands: cmds},
			{Description: "Persist it across reboots:", Commands: persist},
			{Description: "Or apply it on every node with this DaemonSet:", Manifest: daemonSet(cmds)},
		}}
}

func forwardDrop(in Input, p Probe, ev []string) model.Finding {
	cidr := podCIDR(in, p)
	cmds := []string{fmt.Sprintf("iptables -I FORWARD -s %s -j ACCEPT", cidr), fmt.Sprintf("iptables -I FORWARD -d %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", cidr)}
	return model.Finding{ID: IDForwardDrop, Status: model.StatusFail, Subject: subject(p),
		Title:     fmt.Sprintf("Pods on %s cannot reach %s: FORWARD drops their packets", p.Node, p.Target.Name),
		RootCause: fmt.Sprintf("The filter FORWARD chain on node %s has policy DROP and no rule accepts pod traffic from %s.", p.Node, cidr),
		Evidence:  ev,
		Fixes: []model.Fix{{Description: "Accept pod traffic in FORWARD on node " + p.Node + ":", Commands: cmds},
			{Description: "Or apply it on every node with this DaemonSet:", Manifest: daemonSet(cmds)}}}
}

// masqCommand is the seed 003 fix.
func masqCommand(in Input, p Probe) string {
	return fmt.Sprintf("iptables -t nat -A POSTROUTING -s %s -d %s -j MASQUERADE", podCIDR(in, p), destNet(in.Facts[p.Node], p.Target))
}

func noMasquerade(in Input, p Probe, ev []string) model.Finding {
	cmd := masqCommand(in, p)
	return model.Finding{ID: IDNoMasquerade, Status: model.StatusFail, Subject: subject(p),
		Title: fmt.Sprintf("Pods on %s cannot reach %s: their traffic leaves without source NAT", p.Node, p.Target.Name),
		RootCause: fmt.Sprintf("No MASQUERADE or SNAT rule on node %s covers pod CIDR %s → %s, so packets leave with the pod's address %s and the replies have no route back.",
			p.Node, podCIDR(in, p), destNet(in.Facts[p.Node], p.Target), p.Pod.IP),
		Evidence:   ev,
		Fixes:      masqFixes(p, cmd),
		References: []string{"https://kubernetes.io/docs/tasks/administer-cluster/ip-masq-agent/"},
	}
}

func masqFixes(p Probe, cmd string) []model.Fix {
	return []model.Fix{
		{Description: "Masquerade pod traffic to the target network, on node " + p.Node + ":", Commands: []string{cmd}},
		{Description: "Persist it (Debian/Ubuntu: iptables-persistent; RHEL: iptables-services):",
			Commands: []string{"iptables-save > /etc/iptables/rules.v4", "service iptables save"}},
		{Description: "Or apply it on every node with this DaemonSet (it re-adds the rule when missing):", Manifest: daemonSet([]string{cmd})},
		{Description: "Or let the CNI masquerade: Calico IPPool natOutgoing: true; Flannel --ip-masq; the bridge plugin ipMasq: true; " +
			"with ip-masq-agent, keep the target out of nonMasqueradeCIDRs. Note that egress NetworkPolicies then see the node's address, not the pod's."},
	}
}

func masqExempt(in Input, p Probe, v NATVerdict, ev []string) model.Finding {
	cmd := masqCommand(in, p)
	fixes := masqFixes(p, cmd)
	if isMasqAgent(v.Chain) {
		fixes = append([]model.Fix{{Description: "Remove the target network from ip-masq-agent's nonMasqueradeCIDRs:",
			Commands: []string{"kubectl -n kube-system edit configmap ip-masq-agent", "netsleuth check --probe ipmasq"}}}, fixes...)
	}
	return model.Finding{ID: IDMasqExempt, Status: model.StatusFail, Subject: subject(p),
		Title:     fmt.Sprintf("Pods on %s cannot reach %s: a NAT rule exempts their traffic", p.Node, p.Target.Name),
		RootCause: fmt.Sprintf("In nat POSTROUTING on node %s, chain %s lets pod traffic to %s leave un-NATed (`%s`), and the replies to the pod's address have no route back.", p.Node, v.Chain, p.Target.Addr, v.Rule),
		Evidence:  ev,
		Fixes:     fixes,
	}
}

func podBlocked(p Probe, ev []string, seen string) model.Finding {
	return model.Finding{ID: IDPodBlocked, Status: model.StatusFail, Subject: subject(p),
		Title:     fmt.Sprintf("Pods on %s cannot reach %s, the node can", p.Node, p.Target.Name),
		RootCause: fmt.Sprintf("Node %s reaches %s but its pods do not, and %s: an egress NetworkPolicy, the CNI's own egress rules or a firewall matching pod addresses drops the traffic.", p.Node, p.Target.Addr, seen),
		Evidence:  ev,
		Fixes: []model.Fix{{Description: "Look for egress policies that select the pods and for rules matching the pod CIDR:",
			Commands: []string{"kubectl get networkpolicy -A", "iptables-save | grep -E '" + strings.ReplaceAll(p.Pod.IP, ".", `\.`) + "|FORWARD'"}}}}
}

// daemonSet renders a DaemonSet that applies cmds on every node and keeps
// them applied: each command runs when its -C check fails.
func daemonSet(cmds []string) string {
	var script strings.Builder
	script.WriteString("set -e\n          while true; do\n")
	for _, c := range cmds {
		if strings.HasPrefix(c, "iptables ") && strings.Contains(c, " -A ") {
			fmt.Fprintf(&script, "            %s || %s\n", strings.Replace(c, " -A ", " -C ", 1), c)
		} else {
			fmt.Fprintf(&script, "            %s\n", c)
		}
	}
	script.WriteString("            sleep 60\n          done")
	return `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-egress-fix
  namespace: kube-system
spec:
  selector:
    matchLabels: {app: node-egress-fix}
  template:
    metadata:
      labels: {app: node-egress-fix}
    spec:
      hostNetwork: true
      tolerations: [{operator: Exists}]
      containers:
      - name: apply
        # any image with iptables and sysctl that matches the node's iptables backend
        image: registry.k8s.io/kube-proxy:v1.36.3
        securityContext: {privileged: true}
        command: ["/bin/sh", "-c"]
        args:
        - |
          ` + script.String() + "\n"
}
