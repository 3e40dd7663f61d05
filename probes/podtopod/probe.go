// Package podtopod is the pod-to-pod probe (scenario B): agents on every
// (sampled) node send ICMP, TCP and UDP to each other, same node and across
// nodes; failures are explained from what node agents see on the nodes.
package podtopod

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// ID is the probe's identifier for --probe.
const ID = "pod-to-pod"

// DefaultMaxPairs bounds the ordered cross-node pairs tested by default.
const DefaultMaxPairs = 30

type probe struct{}

// New returns the pod-to-pod probe.
func New() probes.Probe { return probe{} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID:       ID,
		Title:    "Pod-to-pod matrix, same node and across nodes",
		Scenario: "B",
		Description: "Starts a restricted agent pod (two on each node for same-node traffic) on every node, or a sample " +
			"of nodes on large clusters (--max-nodes, then --max-pairs), and sends ICMP, TCP and UDP between them with latency and loss. " +
			"When pairs fail it starts announced privileged node agents to read ip_forward, routes and the FORWARD " +
			"chain, and names the cause: forwarding off, a missing pod route, a FORWARD drop, or blocked overlay ports.",
		RBAC:    model.MergePermissions(agent.RBAC, kube.RBACNodes),
		Inputs:  []model.Input{{Flag: "max-pairs", Description: "most ordered cross-node pairs to test (default 30).", Example: "30", Check: CheckMaxPairs}},
		Default: true,
		// Pods and peers go to a sub-sample of the node sample (--max-pairs).
		Agents: []model.AgentUse{{Kind: model.AgentPod}, {Kind: model.AgentPeer}, {Kind: model.AgentNode}},
	}
}

func (probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("listing nodes")
	nodeSample, err := env.AgentNodes(ctx)
	if err != nil {
		return err
	}
	nodes := matrixNodes(nodeSample.Nodes)
	maxPairs := env.Options.MaxPairs
	if maxPairs <= 0 {
		maxPairs = DefaultMaxPairs
	}
	sample := Sample(nodes, maxPairs)
	in := Input{Nodes: sample, Total: len(nodes)}
	names := nodeNames(sample)
	// Earlier runs' leftovers are looked for while the agents start.
	var left sync.WaitGroup
	left.Go(func() { agent.ReportLeftovers(ctx, env, rec, ID) })
	pods, peers, notStarted, err := startAgents(ctx, env, rec, names)
	left.Wait()
	if err != nil {
		return err
	}
	probes.RecordCoverage(rec, ID, nodeSample)
	in.NotStarted = notStarted
	rec.Stage(fmt.Sprintf("sending ICMP, TCP and UDP between %d agents", len(pods)+len(peers)))
	in.Pairs, err = measure(ctx, env, pods, peers)
	if err != nil {
		return err
	}
	if n := countFailed(in.Pairs); n > 0 {
		rec.Stage(fmt.Sprintf("measuring %d failing pair(s) again", n))
		if in.Pairs, err = remeasure(ctx, env, in.Pairs); err != nil {
			return err
		}
	}
	if err := agent.LostAmong(env, failedTargets(in.Pairs)...); err != nil {
		return err // an agent deleted mid-run: the pairs to it say nothing of the network
	}
	if failingNodes := FailingNodes(in.Pairs); len(failingNodes) > 0 {
		facts, failed, err := agent.ReadNodeFacts(ctx, env, rec, "read ip_forward, routes and iptables on nodes with failing pairs", failingNodes)
		if err != nil {
			return err
		}
		in.Facts, in.NotStarted = facts, append(in.NotStarted, failed...)
		if agent.Enabled(env) {
			in.Captures = captureFailing(ctx, env, rec, in)
		}
	}
	for _, f := range Analyze(in) {
		rec.Finding(f)
	}
	return nil
}

// failedTargets are the agents that failing pairs were sent to.
func failedTargets(pairs []Pair) []probes.Agent {
	var out []probes.Agent
	for _, p := range pairs {
		if p.Failed() {
			out = append(out, p.To)
		}
	}
	return out
}

// startAgents starts a pod agent and a same-node peer on every node, the
// two kinds concurrently.
func startAgents(ctx context.Context, env *probes.Env, rec probes.Recorder, names []string) (pods, peers, notStarted []probes.Agent, err error) {
	if env.Agents == nil {
		return nil, nil, nil, agent.ErrNoAgents
	}
	type started struct{ ok, failed []probes.Agent }
	res, errs := probes.FanOut(ctx, 2, 2, func(ctx context.Context, i int) (started, error) {
		var s started
		var err error
		if i == 0 {
			s.ok, s.failed, err = agent.StartPods(ctx, env, rec, probes.AgentPod, names)
		} else {
			s.ok, s.failed, err = agent.Started(env.Agents.Start(ctx, probes.AgentPeer, names))
		}
		return s, err
	})
	if err := probes.FirstError(errs); err != nil {
		return nil, nil, nil, err
	}
	return res[0].ok, res[1].ok, append(res[0].failed, res[1].failed...), nil
}

// matrixNodes are the run's sampled (Ready) nodes as matrix nodes.
func matrixNodes(sample []corev1.Node) []Node {
	out := make([]Node, 0, len(sample))
	for _, n := range sample {
		out = append(out, Node{Name: n.Name, PodCIDRs: kube.PodCIDRs(n), IP: kube.InternalIP(n)})
	}
	return out
}

func nodeNames(ns []Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

// measure runs, from every pod agent, the ops to every other pod agent and
// to the peer on its own node, concurrently across sources.
func measure(ctx context.Context, env *probes.Env, pods, peers []probes.Agent) ([]Pair, error) {
	peerOn := map[string]probes.Agent{}
	for _, p := range peers {
		peerOn[p.Node] = p
	}
	dsts := make([][]probes.Agent, len(pods))
	for i, src := range pods {
		if p, ok := peerOn[src.Node]; ok {
			dsts[i] = append(dsts[i], p)
		}
		for _, d := range pods {
			if d.Node != src.Node {
				dsts[i] = append(dsts[i], d)
			}
		}
	}
	bySrc, errs := probes.FanOut(ctx, len(pods), 0, func(ctx context.Context, i int) ([]Pair, error) {
		return measureFrom(ctx, env, pods[i], dsts[i])
	})
	out := slices.Concat(bySrc...)
	slices.SortFunc(out, func(a, b Pair) int {
		return strings.Compare(a.From.Node+a.To.Node+string(a.To.Kind), b.From.Node+b.To.Node+string(b.To.Kind))
	})
	return out, probes.FirstError(errs)
}

// RetryDelay separates the two measurements of a failing pair.
const RetryDelay = time.Second

func countFailed(pairs []Pair) int {
	n := 0
	for _, p := range pairs {
		if p.Failed() {
			n++
		}
	}
	return n
}

// remeasure measures the failing pairs once more after RetryDelay and keeps
// the second result: only a pair that fails twice counts as failing.
func remeasure(ctx context.Context, env *probes.Env, pairs []Pair) ([]Pair, error) {
	select {
	case <-ctx.Done():
		return pairs, ctx.Err()
	case <-time.After(RetryDelay):
	}
	bySrc := map[string][]int{}
	for i, p := range pairs {
		if p.Failed() {
			bySrc[p.From.Pod] = append(bySrc[p.From.Pod], i)
		}
	}
	out := slices.Clone(pairs)
	for _, idx := range bySrc {
		src := pairs[idx[0]].From
		dsts := make([]probes.Agent, len(idx))
		for k, i := range idx {
			dsts[k] = pairs[i].To
		}
		again, err := measureFrom(ctx, env, src, dsts)
		if err != nil {
			return pairs, err
		}
		for k, i := range idx {
			again[k].Attempts = pairs[i].Attempts + 1
			out[i] = again[k]
		}
	}
	return out, nil
}

// measureFrom sends ICMP, TCP and UDP from src to every dst in one exec.
func measureFrom(ctx context.Context, env *probes.Env, src probes.Agent, dsts []probes.Agent) ([]Pair, error) {
	var req ops.Request
	for _, d := range dsts {
		req.Ops = append(req.Ops,
			ops.Op{Kind: ops.ICMP, Target: d.IP, Count: 3, TimeoutMs: 1000},
			ops.Op{Kind: ops.TCP, Target: d.IP, Port: agent.EchoPort, TimeoutMs: 2000},
			ops.Op{Kind: ops.UDP, Target: d.IP, Port: agent.EchoPort, Count: 3, TimeoutMs: 1000})
	}
	resp, err := env.Agents.Exec(ctx, src, req)
	if err != nil {
		return nil, err
	}
	if len(resp.Results) != len(req.Ops) {
		return nil, fmt.Errorf("%s answered %d results, want %d", src.Ref(), len(resp.Results), len(req.Ops))
	}
	out := make([]Pair, len(dsts))
	for i, d := range dsts {
		r := resp.Results[3*i : 3*i+3]
		out[i] = Pair{From: src, To: d, ICMP: r[0], TCP: r[1], UDP: r[2], Attempts: 1}
	}
	return out, nil
}
