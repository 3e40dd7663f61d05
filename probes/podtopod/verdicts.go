package podtopod

import (
	"fmt"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/fix"
)

// overlayPorts are the ports node-to-node pod traffic needs on common CNIs.
var overlayPorts = []struct{ port, proto, what string }{
	{"4789", "udp", "VXLAN (Calico, Antrea, Cilium on some setups)"},
	{"8472", "udp", "VXLAN (Flannel, Cilium default)"},
	{"6081", "udp", "GENEVE (Cilium, OVN-Kubernetes, Antrea)"},
	{"4240", "tcp", "Cilium health checks"},
	{"179", "tcp", "BGP (Calico)"},
}

func sameNode(in Input, p Pair) model.Finding {
	n := p.From.Node
	ev := pairEvidence(p)
	cause := fmt.Sprintf("Two pods on node %s cannot reach each other, so the CNI's local path (bridge, veths, or filtering on FORWARD) is broken on that node.", n)
	if facts, ok := in.Facts[n]; ok {
		if v, ok := facts.Sysctl(agent.SysBridgeNF); ok {
			ev = append(ev, fmt.Sprintf("node agent on %s: cat %s → %s", n, agent.SysBridgeNF, v))
		}
	}
	return model.Finding{
		ID: IDSameNode, Status: model.StatusFail, Subject: nodeSubject(n),
		Title:     fmt.Sprintf("Pods on node %s cannot reach each other", n),
		RootCause: cause,
		Evidence:  ev,
		Fixes: []model.Fix{
			{Description: "Look for drops of pod traffic in FORWARD and for an ip-masq-agent config whose nonMasqueradeCIDRs lacks the pod CIDR (run the ipmasq probe):",
				Commands: []string{"iptables -S FORWARD", "netsleuth check --probe ipmasq"}},
			{Description: "Restart the CNI agent pod on the node so it re-creates its bridge and rules:",
				Commands: []string{"kubectl -n kube-system get pods -o wide --field-selector spec.nodeName=" + n}},
		},
		References: []string{refNetModel},
	}
}

// crossNodeBlocked is the verdict when both nodes forward and route: what is
// left between them is the underlay, usually the overlay ports.
func crossNodeBlocked(in Input, p Pair) model.Finding {
	a, b := nodeByName(in.Nodes, p.From.Node), nodeByName(in.Nodes, p.To.Node)
	if b.Name < a.Name {
		a, b = b, a
	}
	var fw []string
	var iptA, iptB []string
	for _, o := range overlayPorts {
		fw = append(fw, fmt.Sprintf("firewall-cmd --permanent --add-port=%s/%s  # %s", o.port, o.proto, o.what))
		iptA = append(iptA, fix.Rule{Chain: "INPUT", Spec: fmt.Sprintf("-s %s -p %s --dport %s -j ACCEPT", b.IP, o.proto, o.port), Insert: true}.Ensure())
		iptB = append(iptB, fix.Rule{Chain: "INPUT", Spec: fmt.Sprintf("-s %s -p %s --dport %s -j ACCEPT", a.IP, o.proto, o.port), Insert: true}.Ensure())
	}
	fw = append(fw, "firewall-cmd --reload  # then restart the CNI agent pods: a firewalld reload drops their iptables chains")
	ev := pairEvidence(p)
	if len(in.Facts) == 0 {
		ev = append(ev, "node facts were not read (no node agent)")
	}
	for _, n := range []string{a.Name, b.Name} {
		if f, ok := in.Facts[n]; ok {
			v, _ := f.Sysctl(agent.SysIPForward)
			ev = append(ev, fmt.Sprintf("node agent on %s: ip_forward=%s, %d routes read; errors: %s", n, v, len(f.Routes), strings.Join(f.Errors, "; ")))
		}
	}
	return model.Finding{
		ID: IDCrossNode, Status: model.StatusFail,
		Subject:   &model.Subject{Kind: "NodePair", Name: a.Name + "<->" + b.Name},
		Title:     fmt.Sprintf("Pods on %s and pods on %s cannot reach each other", a.Name, b.Name),
		RootCause: fmt.Sprintf("Forwarding and pod routes look right on both nodes, so traffic between %s (%s) and %s (%s) is dropped on the way: most often a firewall blocking the CNI's overlay or routing ports.", a.Name, a.IP, b.Name, b.IP),
		Evidence:  ev,
		Fixes: []model.Fix{
			{Description: "Open the CNI's node-to-node ports (firewalld), on node " + a.Name + ":", Node: a.Name, Commands: fw},
			{Description: "And the same on node " + b.Name + ":", Node: b.Name, Commands: fw},
			{Description: "Or with iptables, on node " + a.Name + ":", Node: a.Name, Commands: iptA},
			{Description: "And on node " + b.Name + ":", Node: b.Name, Commands: iptB},
			{Description: "Check the cloud security group / network ACL between the nodes for the same ports."},
		},
		References: []string{refNetModel},
	}
}

// partial reports pairs that work over TCP but lose ICMP or UDP, or lose
// some packets.
func partial(pairs []Pair) []model.Finding {
	var blocked, lossy []string
	for _, p := range pairs {
		if p.Failed() {
			continue
		}
		for _, r := range []ops.Result{p.ICMP, p.UDP} {
			switch {
			case r.Outcome == ops.PermissionDeny:
			case !r.Reached():
				blocked = append(blocked, agent.Evidence(p.From, r))
			case r.Loss() > 0:
				lossy = append(lossy, agent.Evidence(p.From, r))
			}
		}
	}
	var out []model.Finding
	if len(blocked) > 0 {
		out = append(out, model.Finding{ID: IDProtocol, Status: model.StatusWarn,
			Title:     "TCP between pods works, but ICMP or UDP does not",
			RootCause: "A firewall, security group or NetworkPolicy between the pods drops ICMP or UDP while it lets TCP through.",
			Evidence:  blocked,
			Fixes: []model.Fix{{Description: "Allow ICMP and UDP between the pod CIDRs in the node firewall and security groups; check NetworkPolicies that list only TCP ports.",
				Commands: []string{"iptables -S | grep -Ei 'icmp|udp'", "kubectl get networkpolicy -A"}}}})
	}
	if len(lossy) > 0 {
		out = append(out, model.Finding{ID: IDLoss, Status: model.StatusWarn,
			Title:     "Some echoes between pods were lost",
			RootCause: "Packets between pods were lost although the path works: congestion, MTU trouble on the overlay, or conntrack pressure.",
			Evidence:  lossy,
			Fixes: []model.Fix{{Description: "Repeat the test and check the interface MTU of the overlay and the conntrack table on both nodes.",
				Commands: []string{"netsleuth check --probe pod-to-pod", "ip -d link", "sysctl net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max"}}}})
	}
	return out
}

func okFinding(pairs []Pair) model.Finding {
	var same, cross []float64
	for _, p := range pairs {
		if p.SameNode() {
			same = append(same, p.TCP.AvgRTTMs())
		} else {
			cross = append(cross, p.TCP.AvgRTTMs())
		}
	}
	ev := []string{fmt.Sprintf("%d same-node pair(s), TCP connect avg %.2f ms", len(same), avg(same)),
		fmt.Sprintf("%d cross-node pair(s), TCP connect avg %.2f ms", len(cross), avg(cross))}
	for _, p := range pairs {
		ev = append(ev, agent.Evidence(p.From, p.TCP))
	}
	return model.Finding{ID: IDOK, Status: model.StatusPass,
		Title:    fmt.Sprintf("All %d pod pairs reach each other (same node and across nodes)", len(pairs)),
		Evidence: ev}
}

func avg(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// refused is a pair whose TCP connect was refused or reset: the packets
// reached the peer, so the pod network between the two works. It is not a
// path fault: the peer agent does not listen on its echo port, or a rule
// there rejects the connection with a reset.
func refused(p Pair) model.Finding {
	to := p.To
	return model.Finding{
		ID: IDRefused, Status: model.StatusFail, Subject: &model.Subject{Kind: "Pod", Namespace: to.Namespace, Name: to.Pod},
		Title: fmt.Sprintf("Pod %s/%s on %s refuses TCP %d from node %s: the packets arrive", to.Namespace, to.Pod, to.Node, agent.EchoPort, p.From.Node),
		RootCause: fmt.Sprintf("A TCP connect from the pod on node %s to %s:%d was %s: the packets crossed the pod network, so the path between the nodes works; "+
			"the agent in %s/%s does not listen on its echo port (an agent image of another version, or a process that stopped), or a rule on node %s rejects the connection with a reset.",
			p.From.Node, to.IP, agent.EchoPort, p.TCP.Outcome, to.Namespace, to.Pod, to.Node),
		Evidence: pairEvidence(p),
		Fixes: []model.Fix{{Description: "See what the agent pod runs and listens on, and look for REJECT rules on its node:",
			Commands: []string{fmt.Sprintf("kubectl -n %s logs %s", to.Namespace, to.Pod), fmt.Sprintf("kubectl -n %s get pod %s -o jsonpath='{.spec.containers[0].image}'", to.Namespace, to.Pod)}},
			{Description: "On node " + to.Node + ":", Node: to.Node, Commands: []string{"iptables-save | grep -E 'REJECT|tcp-reset'"}}},
	}
}
