package kube

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/netsleuth/netsleuth/model"
)

// DefaultMaxNodes is how many nodes active probes start agents on when
// --max-nodes is not given.
const DefaultMaxNodes = 20

// Finding IDs of the shared node coverage; a stable contract for scripts.
const (
	IDNodesNotReady = "nodes.not-ready"
	IDNodesSampled  = "nodes.sampled"
)

// NodesSubject is the subject of findings about the cluster's nodes as a
// whole (which are Ready, which have agents).
var NodesSubject = &model.Subject{Kind: "Cluster", Name: "nodes"}

// firstN is how many names a title or a root cause lists before "…".
const firstN = 10

// NodeSample is the one choice, per run, of the nodes active probes start
// agents on: Ready nodes only, every node a flag names, then a spread of
// the others in a stable order, at most Max.
type NodeSample struct {
	// Total counts every node of the cluster.
	Total int
	// Ready counts the Ready nodes.
	Ready int
	// Max is the bound the sample was drawn with.
	Max int
	// Nodes are the sampled Ready nodes, sorted by name.
	Nodes []corev1.Node
	// Pinned are the nodes a flag names that are in the sample, sorted.
	Pinned []string
	// NotReady are the nodes whose Ready condition is not True, sorted by
	// name: no agent runs on them.
	NotReady []corev1.Node
}

// Names lists the sampled nodes' names.
func (s NodeSample) Names() []string { return Names(s.Nodes) }

// Sampled reports whether Ready nodes were left out.
func (s NodeSample) Sampled() bool { return len(s.Nodes) < s.Ready }

// SampleNodes draws at most max Ready nodes from all (max < 1 means
// DefaultMaxNodes). Ready nodes named in pinned come first; the rest are
// taken round-robin over topology groups (zone, and control plane or not),
// each group in the order of a hash of the node's name, so a rerun over the
// same nodes picks the same ones and a sample spans zones and roles.
func SampleNodes(all []corev1.Node, max int, pinned []string) NodeSample {
	if max < 1 {
		max = DefaultMaxNodes
	}
	ready, _ := ReadyNodes(all)
	s := NodeSample{Total: len(all), Ready: len(ready), Max: max, NotReady: notReady(all)}
	taken := map[string]bool{}
	for _, n := range ready {
		if len(s.Nodes) < max && slices.Contains(pinned, n.Name) {
			s.Nodes = append(s.Nodes, n)
			s.Pinned = append(s.Pinned, n.Name)
			taken[n.Name] = true
		}
	}
	groups := map[string][]corev1.Node{}
	var keys []string
	for _, n := range ready {
		if taken[n.Name] {
			continue
		}
		g := group(n)
		if _, ok := groups[g]; !ok {
			keys = append(keys, g)
		}
		groups[g] = append(groups[g], n)
	}
	slices.Sort(keys)
	for _, g := range keys {
		slices.SortFunc(groups[g], func(a, b corev1.Node) int {
			return cmp.Or(cmp.Compare(nameHash(a.Name), nameHash(b.Name)), strings.Compare(a.Name, b.Name))
		})
	}
	for i := 0; len(s.Nodes) < max; i++ {
		added := false
		for _, g := range keys {
			if i < len(groups[g]) && len(s.Nodes) < max {
				s.Nodes = append(s.Nodes, groups[g][i])
				added = true
			}
		}
		if !added {
			break
		}
	}
	slices.SortFunc(s.Nodes, byName)
	slices.Sort(s.Pinned)
	return s
}

// EveryNode is the coverage of a probe that reads every node itself (no
// agents, no sample): the count, and the nodes that are not Ready for
// NotReadyFinding.
func EveryNode(all []corev1.Node) NodeSample {
	ready, _ := ReadyNodes(all)
	return NodeSample{Total: len(all), Ready: len(ready), Max: len(all), Nodes: ready, NotReady: notReady(all)}
}

// notReady are the nodes of all that are not Ready, sorted by name.
func notReady(all []corev1.Node) []corev1.Node {
	var out []corev1.Node
	for _, n := range all {
		if !Ready(n) {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, byName)
	return out
}

func byName(a, b corev1.Node) int { return strings.Compare(a.Name, b.Name) }

// group is a node's topology group for spreading the sample.
func group(n corev1.Node) string {
	role := "worker"
	for _, l := range []string{"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"} {
		if _, ok := n.Labels[l]; ok {
			role = "control-plane"
		}
	}
	return n.Labels[corev1.LabelTopologyZone] + "/" + role
}

func nameHash(name string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return h.Sum64()
}

// FirstNames renders at most the first 10 of names, "a, b, … (N more)".
func FirstNames(names []string) string {
	if len(names) <= firstN {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … (%s more)", strings.Join(names[:firstN], ", "), Count(len(names)-firstN))
}

// Count renders n with thousands separators: 2,000.
func Count(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + Count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// readyCondition is n's Ready condition; ok is false when it has none.
func readyCondition(n corev1.Node) (c corev1.NodeCondition, ok bool) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c, true
		}
	}
	return corev1.NodeCondition{}, false
}

// Unreachable reports whether the node's kubelet is not reporting: its
// Ready condition is Unknown (the node controller gave up on it) or absent
// (it never reported). Reads through its kubelet (configz) would only time
// out.
func Unreachable(n corev1.Node) bool {
	c, ok := readyCondition(n)
	return !ok || c.Status == corev1.ConditionUnknown
}

// notReadyWhy is one node's line of evidence: its Ready condition.
func notReadyWhy(n corev1.Node) string {
	c, ok := readyCondition(n)
	if !ok {
		return fmt.Sprintf("node %s: no Ready condition: its kubelet never reported", n.Name)
	}
	why := fmt.Sprintf("node %s: Ready=%s", n.Name, c.Status)
	if c.Reason != "" {
		why += " (" + c.Reason + ")"
	}
	if c.Message != "" {
		why += ": " + c.Message
	}
	return why
}

// NotReadyFinding is the one finding for every node that is not Ready: the
// count and the first names in the title, why each one is not Ready in the
// evidence. Every probe that leaves those nodes out cites it; it has the
// same key wherever it is recorded.
func NotReadyFinding(s NodeSample) (model.Finding, bool) {
	if len(s.NotReady) == 0 {
		return model.Finding{}, false
	}
	names := Names(s.NotReady)
	unreachable := 0
	ev := make([]string, 0, len(s.NotReady))
	for _, n := range s.NotReady {
		if Unreachable(n) {
			unreachable++
		}
		ev = append(ev, notReadyWhy(n))
	}
	what := fmt.Sprintf("%s of %s nodes are", Count(len(names)), Count(s.Total))
	if len(names) == 1 {
		what = fmt.Sprintf("1 of %s nodes is", Count(s.Total))
	}
	rc := fmt.Sprintf("%s not Ready", what)
	switch {
	case unreachable == len(names):
		rc += ": their kubelets stopped reporting (Ready is Unknown or missing), so the API server cannot reach them"
	case unreachable > 0:
		rc += fmt.Sprintf(": %s stopped reporting (Ready is Unknown or missing), the others report a failing condition (often the network plugin not initialised)", Count(unreachable))
	default:
		rc += ": their kubelets report a failing condition (often the network plugin not initialised)"
	}
	rc += "; pods there cannot be trusted to run or get a network, so netsleuth starts no agent on them."
	first := names[0]
	f := model.Finding{
		ID:        IDNodesNotReady,
		Status:    model.StatusFail,
		Subject:   NodesSubject,
		Title:     fmt.Sprintf("%s not Ready: %s", what, FirstNames(names)),
		RootCause: rc,
		Evidence:  ev,
		Fixes: []model.Fix{
			{Description: "List the nodes that are not Ready and read why (the Ready condition's reason and message):",
				Commands: []string{`kubectl get nodes --no-headers | awk '$2 != "Ready"'`, "kubectl describe node " + first}},
			{Description: "On a node whose kubelet stopped reporting, check the kubelet and its connection to the API server:", Node: first,
				Commands: []string{"systemctl status kubelet", "journalctl -u kubelet --since -15min --no-pager | tail -50"}},
			{Description: "On a node whose network plugin is not ready, look at the CNI agent pod there:",
				Commands: []string{"kubectl get pods -A -o wide --field-selector spec.nodeName=" + first}},
		},
		References: []string{"https://kubernetes.io/docs/concepts/architecture/nodes/#condition"},
	}
	return f.WithKey(""), true
}

// SampledFinding says which Ready nodes the sample kept, when it left some
// out: one finding per run, whatever probe records it.
func SampledFinding(s NodeSample) (model.Finding, bool) {
	if !s.Sampled() {
		return model.Finding{}, false
	}
	ev := []string{"nodes with agents: " + strings.Join(s.Names(), ", ")}
	if len(s.Pinned) > 0 {
		ev = append(ev, "included because a flag names them: "+strings.Join(s.Pinned, ", "))
	}
	f := model.Finding{
		ID:      IDNodesSampled,
		Status:  model.StatusSkip,
		Subject: NodesSubject,
		Title: fmt.Sprintf("Active probes sampled %s of %s Ready nodes; --max-nodes to change",
			Count(len(s.Nodes)), Count(s.Ready)),
		RootCause: fmt.Sprintf("At most --max-nodes=%d nodes get agents, chosen the same way on every run (nodes a flag names, then a spread over zones and roles in a stable order).", s.Max),
		Evidence:  ev,
	}
	return f.WithKey(""), true
}
