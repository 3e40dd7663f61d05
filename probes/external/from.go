package external

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/policy"
	"github.com/netsleuth/netsleuth/probes/source"
)

// runFrom asks the question from the user's workload r (--from): its
// traffic is sent with its identity (a stand-in with its labels on its
// node, or an ephemeral container in it), next to the node's own, and the
// policy engine answers for its egress, so a NetworkPolicy on its pods,
// their labels or their namespace shows in the answer.
func runFrom(ctx context.Context, env *probes.Env, rec probes.Recorder, r source.Ref, targets []Target) error {
	if env.Agents == nil {
		return agent.ErrNoAgents
	}
	rec.Stage("reading " + r.String())
	pod, err := source.Pod(ctx, env.Kube, r)
	if err != nil {
		return err
	}
	agent.ReportLeftovers(ctx, env, rec, ID)
	node := pod.Spec.NodeName
	in := Input{PodCIDRs: map[string][]string{node: nodeCIDRs(ctx, env, node)}}
	src := Source{Ref: r.String(), Namespace: pod.Namespace, Pod: pod.Name}
	sender, err := source.Start(ctx, env, rec, pod)
	if err != nil {
		return err
	}
	nodes, failed, err := agent.StartNodes(ctx, env, rec, fmt.Sprintf("compare node %s's own view of the targets with %s's", node, src), []string{node})
	if err != nil {
		return err
	}
	if sender.Err != nil {
		failed = append(failed, sender)
	}
	if len(failed) > 0 {
		in.NotStarted = failed
		record(rec, Analyze(in))
		return nil
	}
	answers := ask(ctx, env, rec, pod, targets)
	rec.Stage(fmt.Sprintf("trying %d target(s) from %s and node %s, and reading the node's facts", len(targets), src, node))
	in.Probes, in.Facts, err = tryFrom(ctx, env, targets, answers, sender, nodes[0])
	if err != nil {
		return err
	}
	for i := range in.Probes {
		in.Probes[i].Source = src
	}
	if agent.Enabled(env) {
		in.Captures = captureFailing(ctx, env, rec, in)
	}
	record(rec, Analyze(in))
	return nil
}

func record(rec probes.Recorder, fs []model.Finding) {
	for _, f := range fs {
		rec.Finding(f)
	}
}

// nodeCIDRs are node's pod CIDRs, for the shared node diagnosis.
func nodeCIDRs(ctx context.Context, env *probes.Env, node string) []string {
	n, err := env.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return kube.PodCIDRs(*n)
}

// ask is the policy engine's answer for pod's TCP traffic to each target;
// nil entries when the policies could not be read (the evidence says why
// through the probe's own finding).
func ask(ctx context.Context, env *probes.Env, rec probes.Recorder, pod *corev1.Pod, targets []Target) []*policy.Answer {
	out := make([]*policy.Answer, len(targets))
	e, err := policy.Load(ctx, env, rec)
	if err != nil {
		return out
	}
	src, ok := e.PodEndpoint(pod.Namespace + "/" + pod.Name)
	if !ok {
		return out
	}
	for i, t := range targets {
		a := e.Ask(src, t.Addr, policy.Port{Port: int32(t.port()), Protocol: corev1.ProtocolTCP})
		out[i] = &a
	}
	return out
}

// tryFrom sends every target's ops from the sender, again while the
// answer contradicts the policies (a new stand-in's rules may lag), and
// from the node agent with the node's facts in the same exec.
func tryFrom(ctx context.Context, env *probes.Env, ts []Target, answers []*policy.Answer, sender, nodeAg probes.Agent) ([]Probe, map[string]agent.NodeFacts, error) {
	var req ops.Request
	for _, t := range ts {
		req.Ops = append(req.Ops, t.ops()...)
	}
	n := len(req.Ops)
	type both struct{ pod, node ops.Response }
	res, errs := probes.FanOut(ctx, 2, 2, func(ctx context.Context, i int) (both, error) {
		if i == 1 {
			r, err := env.Agents.Exec(ctx, nodeAg, ops.Request{Ops: append(append([]ops.Op{}, req.Ops...), agent.FactsRequest().Ops...)})
			return both{node: r}, err
		}
		r, _, err := policy.UntilAgrees(ctx, func(ctx context.Context) (ops.Response, error) { return env.Agents.Exec(ctx, sender, req) },
			func(r ops.Response) bool { return agrees(r.Results, answers) })
		return both{pod: r}, err
	})
	if err := probes.FirstError(errs); err != nil {
		return nil, nil, err
	}
	pod, node := res[0].pod.Results, res[1].node.Results
	if len(pod) != n || len(node) != n+len(agent.FactsRequest().Ops) {
		return nil, nil, fmt.Errorf("the agents answered %d and %d results, want %d and %d", len(pod), len(node), n, n+len(agent.FactsRequest().Ops))
	}
	var out []Probe
	for i, t := range ts {
		out = append(out, Probe{Node: nodeAg.Node, Target: t, Pod: sender, NodeAg: nodeAg, Policy: answers[i],
			FromPod: pod[2*i : 2*i+2], FromNode: node[2*i : 2*i+2]})
	}
	return out, map[string]agent.NodeFacts{nodeAg.Node: agent.FactsFrom(nodeAg.Node, ops.Response{Results: node[n:]})}, nil
}

// agrees reports whether each target's TCP connect is what the policies
// say: arrived when they allow it, not when they deny it.
func agrees(rs []ops.Result, answers []*policy.Answer) bool {
	for i, a := range answers {
		if 2*i+1 >= len(rs) {
			return true
		}
		r := rs[2*i+1]
		if a == nil {
			if !r.Arrived() {
				return false // a fresh sender's first packets may meet no rules yet
			}
			continue
		}
		if !(policy.Comparison{Verdict: a.Verdict, Live: policy.Live{Result: r}}).Agrees() {
			return false
		}
	}
	return true
}
