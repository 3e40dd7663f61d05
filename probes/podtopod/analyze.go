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
	"github.com/netsleuth/netsleuth/probes/nodenet"
)

// Finding IDs of this probe; they are a stable contract for scripts. A
// failing pair whose cause is a node fact (forwarding, a pod route, FORWARD)
// is a symptom of the shared node.* finding for that fact.
const (
	IDOK              = ID + ".ok"
	IDSameNode        = ID + ".same-node-failing"
	IDCrossNode       = ID + ".cross-node-blocked"
	IDProtocol        = ID + ".protocol-blocked"
	IDLoss            = ID + ".packet-loss"
	IDRefused         = ID + ".refused"
	IDSampled         = ID + ".sampled"
	IDNodesSkipped    = ID + ".nodes-skipped"
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
	Total      int    // the run's node sample (kube.NodeSample) before the pairs bound
	NotStarted []probes.Agent
	Pairs      []Pair
	Facts      map[string]agent.NodeFacts // node agents' view of nodes with failing pairs
	// Captures are the evidence of captures of failing pairs' retries, by pairKey.
	Captures map[string][]string
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
		if p.Failed() && !p.TCP.NotListening() { // a refusal is no node's fault
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

// Analyze turns the matrix and node facts into findings: per failing pair
// group, the node fact that breaks it (cited as the cause) or the probe's own
// verdict, with the evidence of every pair in the group.
func Analyze(in Input) []model.Finding {
	var out []model.Finding
	for _, a := range in.NotStarted {
		out = append(out, agent.NotStarted(ID, a)...)
	}
	out = append(out, coverage(in)...)
	var failing []model.Finding
	at := map[string]int{}
	for _, p := range in.Pairs {
		if !p.Failed() {
			continue
		}
		for _, f := range diagnose(in, p) {
			key := f.Key
			if key == "" {
				key = model.KeyOf(f.ID, f.Subject, "")
			}
			if i, ok := at[key]; ok {
				failing[i].Evidence = appendNew(failing[i].Evidence, f.Evidence...)
				continue
			}
			at[key] = len(failing)
			failing = append(failing, f)
		}
	}
	slices.SortStableFunc(failing, func(a, b model.Finding) int {
		return strings.Compare(model.KeyOf(a.ID, a.Subject, ""), model.KeyOf(b.ID, b.Subject, ""))
	})
	out = append(out, failing...)
	warns := partial(in.Pairs)
	out = append(out, warns...)
	if len(failing) == 0 && len(warns) == 0 && len(in.Pairs) > 0 {
		out = append(out, okFinding(in.Pairs))
	}
	return out
}

func appendNew(dst []string, src ...string) []string {
	for _, s := range src {
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}

// coverage says which of the run's sampled nodes the pairs bound left out
// (the run's own node sample and the nodes that are not Ready are
// probes.Coverage's).
func coverage(in Input) []model.Finding {
	if in.Total <= len(in.Nodes) {
		return nil
	}
	return []model.Finding{{ID: IDSampled, Status: model.StatusSkip,
		Title:    fmt.Sprintf("The matrix sampled %d of the run's %d agent nodes; widen with --max-pairs", len(in.Nodes), in.Total),
		Evidence: []string{"nodes tested: " + strings.Join(nodeList(in.Nodes), ", ")}}}
}

func nodeList(ns []Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

// diagnose explains one failing pair from the facts of both its nodes: the
// node fact that breaks it first, followed by the pair's finding as its
// symptom; or the pair's finding with the probe's own root cause.
func diagnose(in Input, p Pair) []model.Finding {
	if p.TCP.NotListening() {
		return []model.Finding{refused(p)}
	}
	if p.SameNode() {
		f := sameNode(in, p)
		f.Evidence = append(f.Evidence, in.Captures[pairKey(p)]...)
		if cause, ok := nodeCause(in, p); ok {
			return []model.Finding{cause, f.Symptom(cause)}
		}
		return []model.Finding{f}
	}
	f := crossNodeBlocked(in, p)
	f.Evidence = append(f.Evidence, in.Captures[pairKey(p)]...)
	if cause, ok := nodeCause(in, p); ok {
		return []model.Finding{cause, f.Symptom(cause)}
	}
	return []model.Finding{f}
}

// nodeCause asks the shared node diagnosis about the pair on each of its
// nodes: the local pod's packets out towards the remote pod (forwarding, the
// route to the remote pod CIDR, FORWARD), then the remote pod's arriving.
func nodeCause(in Input, p Pair) (model.Finding, bool) {
	for _, end := range [][2]probes.Agent{{p.From, p.To}, {p.To, p.From}} {
		local, remote := end[0], end[1]
		facts, ok := in.Facts[local.Node]
		if !ok {
			continue
		}
		self, peer := nodeByName(in.Nodes, local.Node), nodeByName(in.Nodes, remote.Node)
		n := nodenet.NodeFrom(local.Node, self.PodCIDRs, facts)
		src, err1 := netip.ParseAddr(local.IP)
		dst, err2 := netip.ParseAddr(remote.IP)
		if err1 != nil || err2 != nil {
			continue
		}
		out := nodenet.Path{Src: src, Dst: dst, Proto: "tcp", DPort: agent.EchoPort}
		if !p.SameNode() {
			out.DstNet, out.Via = nodenet.CIDRFor(peer.PodCIDRs, dst), peer.IP
		}
		if f, broken := nodenet.Explain(n, out); broken {
			return f, true
		}
		if f, broken := nodenet.Forward(n, nodenet.Path{Src: dst, Dst: src, Proto: "tcp", DPort: agent.EchoPort}); broken {
			return f, true
		}
	}
	return model.Finding{}, false
}

func pairEvidence(p Pair) []string {
	ev := []string{agent.Evidence(p.From, p.ICMP), agent.Evidence(p.From, p.TCP), agent.Evidence(p.From, p.UDP)}
	if p.Attempts > 1 {
		ev = append(ev, fmt.Sprintf("the same result on each of %d attempts, %s apart", p.Attempts, RetryDelay))
	}
	return ev
}

func nodeSubject(n string) *model.Subject { return &model.Subject{Kind: "Node", Name: n} }

func nodeByName(ns []Node, name string) Node {
	for _, n := range ns {
		if n.Name == name {
			return n
		}
	}
	return Node{Name: name, IP: "<node-ip>", PodCIDRs: []string{"<pod-cidr>"}}
}
