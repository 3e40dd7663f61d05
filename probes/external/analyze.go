package external

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/nodenet"
	"github.com/netsleuth/netsleuth/probes/policy"
)

// Finding IDs of this probe; they are a stable contract for scripts. A
// failing target whose cause is a node fact (forwarding, a route, FORWARD,
// source NAT) is a symptom of the shared node.* finding for that fact.
const (
	IDOK              = ID + ".ok"
	IDPodUnreachable  = ID + ".pod-unreachable"
	IDNodeUnreachable = ID + ".node-unreachable"
	IDTargetDown      = ID + ".target-unreachable"
	IDAgentNotStarted = ID + ".agent-not-started"
	IDNoTargets       = ID + ".no-targets"
	// IDPolicyDenied: asked --from a workload, a NetworkPolicy on its pods,
	// their labels or namespace denies the target, and the traffic does
	// not arrive.
	IDPolicyDenied = ID + ".policy-denied"
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
	// Source is the workload asked from (--from), "" for the probe's own
	// pod agents; Pod is then the agent sending with its identity, and
	// Policy the policy engine's answer for its traffic to the target.
	Source Source
	Policy *policy.Answer
}

// Source is the user's pod the question is asked from.
type Source struct {
	Ref       string // as --from names it: shop/deployment/web
	Namespace string // the pod picked
	Pod       string
}

// Given reports whether the probe asks from a user's workload.
func (s Source) Given() bool { return s.Ref != "" }

func (s Source) String() string {
	if s.Ref == s.Namespace+"/"+s.Pod {
		return s.Ref
	}
	return fmt.Sprintf("%s (pod %s/%s)", s.Ref, s.Namespace, s.Pod)
}

// Input is everything Analyze reasons about.
type Input struct {
	Probes     []Probe
	PodCIDRs   map[string][]string // node → pod CIDRs
	Facts      map[string]agent.NodeFacts
	NotStarted []probes.Agent
	BadTargets []string
	// Captures are the evidence of captures of failing paths' retries, by
	// node and target name.
	Captures map[string][]string
}

// CaptureKey is the Captures key of a node's probe of a target.
func CaptureKey(node, target string) string { return node + "|" + target }

// Analyze turns the results into one finding per node and target, each
// failing one preceded by the node fact that causes it when there is one.
func Analyze(in Input) []model.Finding {
	var out []model.Finding
	for _, a := range in.NotStarted {
		out = append(out, agent.NotStarted(ID, a)...)
	}
	for _, p := range in.Probes {
		out = append(out, diagnose(in, p)...)
	}
	return out
}

func subject(p Probe) *model.Subject {
	if p.Source.Given() {
		return &model.Subject{Kind: "Pod", Namespace: p.Source.Namespace, Name: p.Source.Pod + " -> " + p.Target.Name}
	}
	return &model.Subject{Kind: "Node", Name: p.Node + " -> " + p.Target.Name}
}

// pods names who the pod traffic came from: the node's pods, or the
// workload asked from.
func (p Probe) pods() string {
	if p.Source.Given() {
		return p.Source.String()
	}
	return "Pods on " + p.Node
}

func evidence(p Probe) []string {
	var ev []string
	if p.Policy != nil {
		ev = append(ev, p.Policy.Finding.Evidence...)
	}
	for _, r := range p.FromNode {
		ev = append(ev, agent.Evidence(p.NodeAg, r))
	}
	for _, r := range p.FromPod {
		ev = append(ev, agent.Evidence(p.Pod, r))
	}
	return ev
}

func (in Input) node(name string) (nodenet.Node, bool) {
	f, ok := in.Facts[name]
	return nodenet.NodeFrom(name, in.PodCIDRs[name], f), ok
}

func diagnose(in Input, p Probe) []model.Finding {
	nodeOK, podOK := ops.Arrived(p.FromNode), ops.Arrived(p.FromPod)
	if p.Policy != nil && !p.Policy.Allowed() {
		if !podOK {
			return []model.Finding{policyDenied(p)} // the first thing the packets meet
		}
		return append(notEnforced(p), diagnose(in, Probe{Node: p.Node, Target: p.Target, Pod: p.Pod, NodeAg: p.NodeAg,
			FromPod: p.FromPod, FromNode: p.FromNode, Source: p.Source})...)
	}
	switch {
	case nodeOK && podOK:
		title := fmt.Sprintf("Pods and node %s reach %s", p.Node, p.Target.Name)
		if p.Source.Given() {
			title = fmt.Sprintf("%s and its node %s reach %s", p.Source, p.Node, p.Target.Name)
		}
		return []model.Finding{{ID: IDOK, Status: model.StatusPass, Subject: subject(p), Title: title, Evidence: evidence(p)}}
	case !nodeOK:
		return nodeFails(in, p)
	}
	return podFails(in, p)
}

// policyDenied: the policies deny the source's traffic to the target and it
// does not arrive. The node is not to blame, whatever it would do next.
func policyDenied(p Probe) model.Finding {
	return p.Policy.Blocked(IDPolicyDenied, subject(p),
		fmt.Sprintf("%s cannot reach %s: NetworkPolicy %s denies it", p.Source, p.Target.Name, strings.Join(p.Policy.Deniers(), ", ")),
		evidence(Probe{FromPod: p.FromPod, FromNode: p.FromNode, Pod: p.Pod, NodeAg: p.NodeAg}))
}

// notEnforced: the policies deny the traffic, yet it arrived.
func notEnforced(p Probe) []model.Finding {
	r := p.FromPod[len(p.FromPod)-1] // the TCP connect: the policies speak of ports
	line, f := p.Policy.Compare(policy.Live{Via: p.Pod.Ref(), Result: r, Attempts: 1})
	if f == nil {
		return nil
	}
	f.Evidence = append(f.Evidence, line)
	return []model.Finding{*f}
}

// path is the target as the node's diagnosis sees it.
func (in Input) path(p Probe) nodenet.Path {
	src, _ := netip.ParseAddr(p.Pod.IP)
	return nodenet.Path{Src: src, Dst: p.Target.Addr, DstNet: destNet(in, p), Proto: "tcp", DPort: p.Target.port(),
		OffCluster: true, AllowDefault: true, Via: healthyVia(in, p)}
}

// podFails explains a target the node reaches and its pods do not: the
// node's forwarding, FORWARD chain or source NAT, in the order packets
// meet them; when those are right, something matching pod addresses drops it.
func podFails(in Input, p Probe) []model.Finding {
	f := model.Finding{ID: IDPodUnreachable, Status: model.StatusFail, Subject: subject(p),
		Title:    fmt.Sprintf("%s cannot reach %s, the node %s can", p.pods(), p.Target.Name, p.Node),
		Evidence: append(evidence(p), in.Captures[CaptureKey(p.Node, p.Target.Name)]...)}
	n, ok := in.node(p.Node)
	if ok {
		if cause, found := nodenet.Explain(n, in.path(p)); found {
			return []model.Finding{cause, f.Symptom(cause)}
		}
	}
	seen := "the node forwards, routes and source-NATs pod traffic to it"
	if !ok {
		seen = "the node agent could not read the node's settings"
	}
	f.Evidence = append(f.Evidence, n.Facts.Errors...)
	who, from, dropper := "its pods do", "<namespace>/<pod>", "an egress NetworkPolicy, the CNI's own egress rules"
	if p.Source.Given() {
		who, from = p.Source.String()+" does", p.Source.Ref
		if p.Policy != nil {
			dropper = "the NetworkPolicies admit it (see the evidence), so the CNI's own egress rules"
		}
	}
	f.RootCause = fmt.Sprintf("Node %s reaches %s but %s not, and %s: %s or a firewall matching pod addresses drops the traffic.", p.Node, p.Target.Addr, who, seen, dropper)
	f.Fixes = []model.Fix{{Description: "Look for egress policies that select the pods and for rules matching the pod CIDR:",
		Commands: []string{"kubectl get networkpolicy -A", fmt.Sprintf("netsleuth check --probe policy --from %s --to %s:%d", from, p.Target.Addr, p.Target.port())}},
		{Description: "And on the node, for rules naming pod addresses:", Node: p.Node,
			Commands: []string{"iptables-save | grep -E '" + strings.ReplaceAll(p.Pod.IP, ".", `\.`) + "|FORWARD'"}}}
	return []model.Finding{f}
}

// nodeFails explains a target the node itself cannot reach.
func nodeFails(in Input, p Probe) []model.Finding {
	n, haveFacts := in.node(p.Node)
	r, found := n.Facts.RouteTo(p.Target.Addr)
	f := model.Finding{ID: IDNodeUnreachable, Status: model.StatusFail, Subject: subject(p),
		Title:    fmt.Sprintf("Node %s and its pods cannot reach %s", p.Node, p.Target.Name),
		Evidence: evidence(p)}
	if haveFacts {
		if cause, broken := nodenet.Route(n, in.path(p)); broken {
			return []model.Finding{cause, f.Symptom(cause)}
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("node agent on %s: ip route get %s → %s", p.Node, p.Target.Addr, nodenet.RouteText(r, found)))
	}
	if allNodesFail(in, p.Target) {
		f.ID, f.Title = IDTargetDown, fmt.Sprintf("%s does not answer from any node", p.Target.Name)
		f.RootCause = fmt.Sprintf("No node reaches %s although node %s has a route (%s): the target is down or blocked beyond the nodes.", p.Target.Name, p.Node, nodenet.RouteText(r, found))
		if p.Source.Given() { // only the source's node was tried
			f.Title = fmt.Sprintf("%s does not answer from %s or its node %s", p.Target.Name, p.Source, p.Node)
			f.RootCause = fmt.Sprintf("Neither %s nor its node %s reaches %s although the node has a route (%s): the target is down or blocked beyond the node.", p.Source, p.Node, p.Target.Name, nodenet.RouteText(r, found))
		}
		f.Fixes = []model.Fix{{Description: "Check that the target is up and listening, and that the router or firewall between the nodes and it lets the nodes through:", Node: p.Node,
			Commands: []string{"ping -c3 " + p.Target.Addr.String(), fmt.Sprintf("traceroute -n %s", p.Target.Addr)}}}
		return []model.Finding{f}
	}
	f.Title = fmt.Sprintf("Node %s cannot reach %s, other nodes can", p.Node, p.Target.Name)
	f.RootCause = fmt.Sprintf("Node %s sends traffic for %s via %s but gets no answer, while other nodes reach it: the path from this node (its gateway, a firewall, or an ACL on the target) drops it.", p.Node, p.Target.Addr, nodenet.RouteText(r, found))
	f.Fixes = []model.Fix{{Description: "Compare the node's route and firewall with a node that works:", Node: p.Node,
		Commands: []string{"ip route get " + p.Target.Addr.String(), "iptables -S OUTPUT"}}}
	return []model.Finding{f}
}

// healthyVia is the gateway a node that reaches the target uses for it.
func healthyVia(in Input, p Probe) string {
	for _, q := range in.Probes {
		if q.Target.Name != p.Target.Name || q.Node == p.Node || !ops.Arrived(q.FromNode) {
			continue
		}
		if f, ok := in.Facts[q.Node]; ok {
			if r, ok := f.RouteTo(p.Target.Addr); ok && !r.Reject && r.Gateway != "" && r.Dst != "0.0.0.0/0" {
				return r.Gateway
			}
		}
	}
	return ""
}

func allNodesFail(in Input, t Target) bool {
	for _, q := range in.Probes {
		if q.Target.Name == t.Name && ops.Arrived(q.FromNode) {
			return false
		}
	}
	return true
}

// destNet is the network to name in fixes: the route a node that reaches the
// target uses when it is specific, else the node's own, else the target.
func destNet(in Input, p Probe) string {
	specific := func(f agent.NodeFacts) (string, bool) {
		if r, ok := f.RouteTo(p.Target.Addr); ok && !r.Reject && r.Dst != "0.0.0.0/0" {
			return r.Dst, true
		}
		return "", false
	}
	if d, ok := specific(in.Facts[p.Node]); ok {
		return d
	}
	for _, q := range in.Probes {
		if q.Target.Name == p.Target.Name && ops.Arrived(q.FromNode) {
			if d, ok := specific(in.Facts[q.Node]); ok {
				return d
			}
		}
	}
	return p.Target.Net
}
