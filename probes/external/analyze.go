package external

import (
	"fmt"
	"net/netip"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// Finding IDs of this probe; they are a stable contract for scripts.
const (
	IDOK              = ID + ".ok"
	IDNodeNoRoute     = ID + ".node-no-route"
	IDTargetDown      = ID + ".target-unreachable"
	IDIPForward       = ID + ".ip-forward-off"
	IDForwardDrop     = ID + ".forward-drop"
	IDNoMasquerade    = ID + ".no-masquerade"
	IDMasqExempt      = ID + ".masquerade-exempt"
	IDPodBlocked      = ID + ".pod-egress-blocked"
	IDAgentNotStarted = ID + ".agent-not-started"
	IDNoTargets       = ID + ".no-targets"
)

// Probe is one target as tested from one node: from a pod there and from
// the node itself.
type Probe struct {
	Node     string
	Target   Target
	Pod      probes.Agent
	NodeAg   probes.Agent
	FromPod  []ops.Result
	FromNode []ops.Result
}

// Reached reports whether any result shows the target answered: a reply,
// or a refusal (RST), which proves the path works.
func Reached(rs []ops.Result) bool {
	for _, r := range rs {
		if r.Reached() || r.Outcome == ops.Refused {
			return true
		}
	}
	return false
}

// Input is everything Analyze reasons about.
type Input struct {
	Probes     []Probe
	PodCIDRs   map[string][]string // node → pod CIDRs
	Facts      map[string]agent.NodeFacts
	NotStarted []probes.Agent
	BadTargets []string
}

// Analyze turns the results into one finding per node and target.
func Analyze(in Input) []model.Finding {
	var out []model.Finding
	for _, a := range in.NotStarted {
		out = append(out, agent.NotStartedFinding(ID, a))
	}
	for _, p := range in.Probes {
		out = append(out, diagnose(in, p))
	}
	return out
}

func subject(p Probe) *model.Subject {
	return &model.Subject{Kind: "Node", Name: p.Node + " -> " + p.Target.Name}
}

func evidence(p Probe) []string {
	var ev []string
	for _, r := range p.FromNode {
		ev = append(ev, agent.Evidence(p.NodeAg, r))
	}
	for _, r := range p.FromPod {
		ev = append(ev, agent.Evidence(p.Pod, r))
	}
	return ev
}

func diagnose(in Input, p Probe) model.Finding {
	nodeOK, podOK := Reached(p.FromNode), Reached(p.FromPod)
	switch {
	case nodeOK && podOK:
		return model.Finding{ID: IDOK, Status: model.StatusPass, Subject: subject(p),
			Title:    fmt.Sprintf("Pods and node %s reach %s", p.Node, p.Target.Name),
			Evidence: evidence(p)}
	case !nodeOK:
		return nodeFails(in, p)
	}
	return podFails(in, p)
}

// nodeFails explains a target the node itself cannot reach.
func nodeFails(in Input, p Probe) model.Finding {
	facts, haveFacts := in.Facts[p.Node]
	r, found := facts.RouteTo(p.Target.Addr)
	ev := evidence(p)
	if haveFacts && len(facts.Routes) > 0 {
		ev = append(ev, fmt.Sprintf("node agent on %s: ip route get %s → %s", p.Node, p.Target.Addr, routeText(r, found)))
	}
	if haveFacts && len(facts.Routes) > 0 && (!found || r.Reject) {
		good := healthyRoute(in, p)
		fix := fmt.Sprintf("ip route add %s via <gateway>", p.Target.Net)
		desc := "Add a route to the target network on node " + p.Node + " through the gateway that leads to it:"
		if good != "" {
			fix = "ip route add " + good
			desc = "Add the route the nodes that reach the target use, on node " + p.Node + ":"
		}
		return model.Finding{ID: IDNodeNoRoute, Status: model.StatusFail, Subject: subject(p),
			Title:     fmt.Sprintf("Node %s has no route to %s", p.Node, p.Target.Name),
			RootCause: fmt.Sprintf("Node %s has %s for %s, so neither the node nor its pods can reach it.", p.Node, noRouteText(r, found), p.Target.Addr),
			Evidence:  ev,
			Fixes: []model.Fix{
				{Description: desc, Commands: []string{fix}},
				{Description: "Persist it (netplan, /etc/network/interfaces, NetworkManager or a route-<iface> file), or apply it on every node with the DaemonSet below.",
					Manifest: daemonSet([]string{fix})},
			}}
	}
	if allNodesFail(in, p.Target) {
		return model.Finding{ID: IDTargetDown, Status: model.StatusFail, Subject: subject(p),
			Title:     fmt.Sprintf("%s does not answer from any node", p.Target.Name),
			RootCause: fmt.Sprintf("No node reaches %s although node %s has a route (%s): the target is down or blocked beyond the nodes.", p.Target.Name, p.Node, routeText(r, found)),
			Evidence:  ev,
			Fixes: []model.Fix{{Description: "Check that the target is up and listening, and that the router or firewall between the nodes and it lets the nodes through.",
				Commands: []string{"ping -c3 " + p.Target.Addr.String(), fmt.Sprintf("traceroute -n %s", p.Target.Addr)}}}}
	}
	return model.Finding{ID: IDTargetDown, Status: model.StatusFail, Subject: subject(p),
		Title:     fmt.Sprintf("Node %s cannot reach %s, other nodes can", p.Node, p.Target.Name),
		RootCause: fmt.Sprintf("Node %s sends traffic for %s via %s but gets no answer, while other nodes reach it: the path from this node (its gateway, a firewall, or an ACL on the target) drops it.", p.Node, p.Target.Addr, routeText(r, found)),
		Evidence:  ev,
		Fixes: []model.Fix{{Description: "Compare the node's route and firewall with a node that works.",
			Commands: []string{"ip route get " + p.Target.Addr.String(), "iptables -S OUTPUT"}}}}
}

func routeText(r ops.Route, found bool) string {
	if !found {
		return "no route"
	}
	return r.String()
}

func noRouteText(r ops.Route, found bool) string {
	if !found {
		return "no route at all"
	}
	return "only the reject route `" + r.String() + "`"
}

// healthyRoute is the route a node that reaches the target uses, as
// arguments of `ip route add`.
func healthyRoute(in Input, p Probe) string {
	for _, q := range in.Probes {
		if q.Target.Name != p.Target.Name || q.Node == p.Node || !Reached(q.FromNode) {
			continue
		}
		if f, ok := in.Facts[q.Node]; ok {
			if r, ok := f.RouteTo(p.Target.Addr); ok && !r.Reject && r.Gateway != "" && r.Dst != "0.0.0.0/0" {
				return r.Dst + " via " + r.Gateway
			}
		}
	}
	return ""
}

func allNodesFail(in Input, t Target) bool {
	for _, q := range in.Probes {
		if q.Target.Name == t.Name && Reached(q.FromNode) {
			return false
		}
	}
	return true
}

// podCIDR is the pod CIDR of p's node that holds the pod agent's address.
func podCIDR(in Input, p Probe) string {
	ip, _ := netip.ParseAddr(p.Pod.IP)
	for _, c := range in.PodCIDRs[p.Node] {
		if pf, err := netip.ParsePrefix(c); err == nil && pf.Contains(ip) {
			return c
		}
	}
	if len(in.PodCIDRs[p.Node]) > 0 {
		return in.PodCIDRs[p.Node][0]
	}
	return p.Pod.IP + "/32"
}

// destNet is the network to name in fixes: the node's route for the target
// when it is specific, else the target itself.
func destNet(facts agent.NodeFacts, t Target) string {
	if r, ok := facts.RouteTo(t.Addr); ok && !r.Reject && r.Dst != "0.0.0.0/0" {
		return r.Dst
	}
	return t.Net
}
