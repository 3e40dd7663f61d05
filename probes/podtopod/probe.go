// Package podtopod is the pod-to-pod probe (scenario B): agents on every
// (sampled) node send ICMP, TCP and UDP to each other, same node and across
// nodes; failures are explained from what node agents see on the nodes.
package podtopod

import (
	"context"
	"fmt"
	"slices"
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
			"of nodes on large clusters (--max-pairs), and sends ICMP, TCP and UDP between them with latency and loss. " +
			"When pairs fail it starts announced privileged node agents to read ip_forward, routes and the FORWARD " +
			"chain, and names the cause: forwarding off, a missing pod route, a FORWARD drop, or blocked overlay ports.",
		RBAC:    agent.RBAC,
		Inputs:  []model.Input{{Flag: "max-pairs", Description: "most ordered cross-node pairs to test (default 30)."}},
		Default: true,
	}
}

func (probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("listing nodes")
	all, err := kube.Nodes(ctx, env.Kube)
	if err != nil {
		return err
	}
	agent.ReportLeftovers(ctx, env, rec, ID)
	nodes, skipped := readyNodes(all)
	maxPairs := env.Options.MaxPairs
	if maxPairs <= 0 {
		maxPairs = DefaultMaxPairs
	}
	sample := Sample(nodes, maxPairs)
	in := Input{Nodes: sample, Skipped: skipped, Total: len(nodes)}
	names := nodeNames(sample)
	var pods, peers []probes.Agent
	var errPods, errPeers error
	var wg sync.WaitGroup
	wg.Go(func() { pods, in.NotStarted, errPods = agent.StartPods(ctx, env, rec, probes.AgentPod, names) })
	wg.Go(func() {
		var failed []probes.Agent
		peers, failed, errPeers = agent.Started(env.Agents.Start(ctx, probes.AgentPeer, names))
		in.NotStarted = append(in.NotStarted, failed...)
	})
	wg.Wait()
	if err := firstErr(errPods, errPeers); err != nil {
		return err
	}
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
	if failingNodes := FailingNodes(in.Pairs); len(failingNodes) > 0 {
		facts, failed, err := agent.ReadNodeFacts(ctx, env, rec, "read ip_forward, routes and iptables on nodes with failing pairs", failingNodes)
		if err != nil {
			return err
		}
		in.Facts, in.NotStarted = facts, append(in.NotStarted, failed...)
	}
	for _, f := range Analyze(in) {
		rec.Finding(f)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// readyNodes returns the Ready nodes and the names of the others.
func readyNodes(all []corev1.Node) (ready []Node, skipped []string) {
	for _, n := range all {
		if !kubeReady(n) {
			skipped = append(skipped, n.Name)
			continue
		}
		nd := Node{Name: n.Name, PodCIDRs: n.Spec.PodCIDRs}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && nd.IP == "" {
				nd.IP = a.Address
			}
		}
		ready = append(ready, nd)
	}
	slices.SortFunc(ready, func(a, b Node) int { return compare(a.Name, b.Name) })
	return ready, skipped
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func kubeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
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
	var mu sync.Mutex
	var out []Pair
	var firstErr error
	var wg sync.WaitGroup
	for _, src := range pods {
		var dsts []probes.Agent
		if p, ok := peerOn[src.Node]; ok {
			dsts = append(dsts, p)
		}
		for _, d := range pods {
			if d.Node != src.Node {
				dsts = append(dsts, d)
			}
		}
		wg.Go(func() {
			pairs, err := measureFrom(ctx, env, src, dsts)
			mu.Lock()
			defer mu.Unlock()
			out = append(out, pairs...)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b Pair) int {
		return compare(a.From.Node+a.To.Node+string(a.To.Kind), b.From.Node+b.To.Node+string(b.To.Kind))
	})
	return out, firstErr
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
	out := make([]Pair, len(dsts))
	for i, d := range dsts {
		r := resp.Results[3*i : 3*i+3]
		out[i] = Pair{From: src, To: d, ICMP: r[0], TCP: r[1], UDP: r[2], Attempts: 1}
	}
	return out, nil
}
