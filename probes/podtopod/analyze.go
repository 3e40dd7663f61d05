package podtopod

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// Finding IDs of this probe; they are a stable contract for scripts.
const (
	IDOK              = ID + ".ok"
	IDSameNode        = ID + ".same-node-failing"
	IDIPForward       = ID + ".ip-forward-off"
	IDNoRoute         = ID + ".no-pod-route"
	IDForwardDrop     = ID + ".forward-drop"
	IDCrossNode       = ID + ".cross-node-blocked"
	IDProtocol        = ID + ".protocol-blocked"
	IDLoss            = ID + ".packet-loss"
	IDSampled         = ID + ".sampled"
	IDNodesNotReady   = ID + ".nodes-skipped"
	IDAgentNotStarted = ID + ".agent-not-started"
)

const refNetModel = "https://kubernetes.io/docs/concepts/services-networking/#the-kubernetes-network-model"

// Node is a node of the matrix.
type Node struct {
	Name     string
	IP       string
	PodCIDRs []string
}

// Pair is what one agent saw sending to another.
type Pair struct {
	From, To       probes.Agent
	ICMP, TCP, UDP ops.Result
	// Attempts is how many times the pair was measured: a failing pair is
	// measured again before it counts, so one lost first packet (a fresh pod,
	// a rule being applied) is not reported as a broken path.
	Attempts int
}

// SameNode reports whether both ends are on one node.
func (p Pair) SameNode() bool { return p.From.Node == p.To.Node }

// Failed reports whether the pair cannot talk: TCP, the probe's main
// signal, got no answer.
func (p Pair) Failed() bool { return !p.TCP.Reached() }

// Input is everything Analyze reasons about.
type Input struct {
	Nodes      []Node // the sampled nodes
	Total      int    // Ready nodes before sampling
	Skipped    []string
	NotStarted []probes.Agent
	Pairs      []Pair
	Facts      map[string]agent.NodeFacts // node agents' view of nodes with failing pairs
}

// Sample picks at most k nodes, k(k-1) ≤ maxPairs, spread over the sorted list.
func Sample(nodes []Node, maxPairs int) []Node {
	n := len(nodes)
	if n*(n-1) <= maxPairs {
		return nodes
	}
	k := 2
	for (k+1)*k <= maxPairs {
		k++
	}
	out := make([]Node, 0, k)
	for i := range k {
		out = append(out, nodes[i*n/k])
	}
	return out
}

// FailingNodes lists the nodes at either end of a failing pair.
func FailingNodes(pairs []Pair) []string {
	var out []string
	for _, p := range pairs {
		if p.Failed() {
			for _, n := range []string{p.From.Node, p.To.Node} {
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// Analyze turns the matrix and node facts into findings.
func Analyze(in Input) []model.Finding {
	var out []model.Finding
	for _, a := range in.NotStarted {
		out = append(out, agent.NotStartedFinding(ID, a))
	}
	out = append(out, coverage(in)...)
	byNode := map[string]*model.Finding{}
	for _, p := range in.Pairs {
		if !p.Failed() {
			continue
		}
		f := diagnose(in, p)
		key := f.ID + "|" + f.Subject.String()
		if prev, ok := byNode[key]; ok {
			prev.Evidence = append(prev.Evidence, pairEvidence(p)...)
			continue
		}
		byNode[key] = &f
	}
	keys := make([]string, 0, len(byNode))
	for k := range byNode {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, *byNode[k])
	}
	warns := partial(in.Pairs)
	out = append(out, warns...)
	if len(byNode) == 0 && len(warns) == 0 && len(in.Pairs) > 0 {
		out = append(out, okFinding(in.Pairs))
	}
	return out
}

// coverage says which nodes were left out.
func coverage(in Input) []model.Finding {
	var out []model.Finding
	if len(in.Skipped) > 0 {
		out = append(out, model.Finding{ID: IDNodesNotReady, Status: model.StatusSkip,
			Title:    fmt.Sprintf("%d node(s) are not Ready and were left out of the matrix", len(in.Skipped)),
			Evidence: in.Skipped})
	}
	if in.Total > len(in.Nodes) {
		out = append(out, model.Finding{ID: IDSampled, Status: model.StatusSkip,
			Title:    fmt.Sprintf("Sampled %d of %d nodes; widen with --max-pairs", len(in.Nodes), in.Total),
			Evidence: []string{"nodes tested: " + strings.Join(nodeList(in.Nodes), ", ")}})
	}
	return out
}

func nodeList(ns []Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

// diagnose explains one failing pair from the facts of both its nodes.
func diagnose(in Input, p Pair) model.Finding {
	if p.SameNode() {
		return sameNode(in, p)
	}
	for _, n := range []string{p.From.Node, p.To.Node} {
		facts, ok := in.Facts[n]
		if !ok {
			continue
		}
		if v, ok := facts.Sysctl(agent.SysIPForward); ok && v == "0" {
			return ipForwardOff(n, p)
		}
	}
	if f, ok := missingRoute(in, p); ok {
		return f
	}
	if f, ok := forwardDrop(in, p); ok {
		return f
	}
	return crossNodeBlocked(in, p)
}

func pairEvidence(p Pair) []string {
	ev := []string{agent.Evidence(p.From, p.ICMP), agent.Evidence(p.From, p.TCP), agent.Evidence(p.From, p.UDP)}
	if p.Attempts > 1 {
		ev = append(ev, fmt.Sprintf("the same result on each of %d attempts, %s apart", p.Attempts, RetryDelay))
	}
	return ev
}

func nodeSubject(n string) *model.Subject { return &model.Subject{Kind: "Node", Name: n} }

func ipForwardOff(node string, p Pair) model.Finding {
	return model.Finding{
		ID: IDIPForward, Status: model.StatusFail, Subject: nodeSubject(node),
		Title:     fmt.Sprintf("Node %s does not forward packets, so its pods cannot talk to other nodes", node),
		RootCause: fmt.Sprintf("net.ipv4.ip_forward is 0 on node %s, so the kernel drops pod traffic it should route between the pod network and the node network.", node),
		Evidence:  append([]string{fmt.Sprintf("node agent on %s: cat %s → 0", node, agent.SysIPForward)}, pairEvidence(p)...),
		Fixes: []model.Fix{
			{Description: "Turn forwarding on now, on node " + node + ":", Commands: []string{"sysctl -w net.ipv4.ip_forward=1"}},
			{Description: "Persist it across reboots:", Commands: []string{"echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/99-kubernetes.conf", "sysctl --system"}},
		},
		References: []string{"https://kubernetes.io/docs/setup/production-environment/container-runtimes/#prerequisite-ipv4-forwarding-optional"},
	}
}

// missingRoute finds a node without a usable route to the other node's pod CIDR.
func missingRoute(in Input, p Pair) (model.Finding, bool) {
	for _, end := range [][2]probes.Agent{{p.From, p.To}, {p.To, p.From}} {
		facts, ok := in.Facts[end[0].Node]
		dst, err := netip.ParseAddr(end[1].IP)
		if !ok || err != nil || len(facts.Routes) == 0 {
			continue
		}
		r, found := facts.RouteTo(dst)
		if found && !r.Reject && r.Dst != "0.0.0.0/0" {
			continue
		}
		have := "no route at all"
		if found {
			have = "only `" + r.String() + "`"
		}
		peer := nodeByName(in.Nodes, end[1].Node)
		cidr := strings.Join(peer.PodCIDRs, ",")
		return model.Finding{
			ID: IDNoRoute, Status: model.StatusFail, Subject: nodeSubject(end[0].Node),
			Title:     fmt.Sprintf("Node %s has no route to the pods of node %s", end[0].Node, end[1].Node),
			RootCause: fmt.Sprintf("Node %s has %s for %s (pod CIDR %s of node %s), so replies and requests for those pods never reach node %s.", end[0].Node, have, end[1].IP, cidr, end[1].Node, end[1].Node),
			Evidence:  append([]string{fmt.Sprintf("node agent on %s: ip route get %s → %s", end[0].Node, end[1].IP, routeText(r, found))}, pairEvidence(p)...),
			Fixes: []model.Fix{
				{Description: fmt.Sprintf("Add the route on node %s (routed CNIs; overlay CNIs add it themselves: restart the CNI agent pod on that node instead):", end[0].Node),
					Commands: []string{fmt.Sprintf("ip route add %s via %s", cidr, peer.IP)}},
			},
			References: []string{refNetModel},
		}, true
	}
	return model.Finding{}, false
}

func routeText(r ops.Route, found bool) string {
	if !found {
		return "no route"
	}
	return r.String()
}

func nodeByName(ns []Node, name string) Node {
	for _, n := range ns {
		if n.Name == name {
			return n
		}
	}
	return Node{Name: name, IP: "<node-ip>", PodCIDRs: []string{"<pod-cidr>"}}
}

// forwardDrop finds a node whose filter FORWARD policy is DROP with no rule
// accepting pod traffic.
func forwardDrop(in Input, p Pair) (model.Finding, bool) {
	for _, n := range []string{p.From.Node, p.To.Node} {
		facts, ok := in.Facts[n]
		if !ok || facts.IPTables == "" {
			continue
		}
		pol, rules := agent.ParseIPTables(facts.IPTables)
		if pol["filter/FORWARD"] != "DROP" || acceptsPods(rules) {
			continue
		}
		return model.Finding{
			ID: IDForwardDrop, Status: model.StatusFail, Subject: nodeSubject(n),
			Title:     fmt.Sprintf("Node %s drops forwarded pod traffic", n),
			RootCause: fmt.Sprintf("The filter FORWARD chain on node %s has policy DROP and no rule accepts pod traffic.", n),
			Evidence:  append([]string{fmt.Sprintf("node agent on %s: iptables-save -t filter → :FORWARD DROP", n)}, pairEvidence(p)...),
			Fixes: []model.Fix{{Description: "Accept pod traffic in FORWARD on node " + n + " (or restart the CNI agent, which installs these rules):",
				Commands: podAccept(in.Nodes)}},
		}, true
	}
	return model.Finding{}, false
}

func acceptsPods(rules []Rule) bool {
	for _, r := range rules {
		if r.Table == "filter" && r.Chain == "FORWARD" && r.Args["-j"] == "ACCEPT" {
			return true
		}
	}
	return false
}

// Rule aliases agent.Rule for readability here.
type Rule = agent.Rule

func podAccept(nodes []Node) []string {
	var cmds []string
	for _, n := range nodes {
		for _, c := range n.PodCIDRs {
			cmds = append(cmds, "iptables -I FORWARD -s "+c+" -j ACCEPT", "iptables -I FORWARD -d "+c+" -j ACCEPT")
		}
	}
	return cmds
}
