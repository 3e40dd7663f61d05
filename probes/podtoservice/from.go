package podtoservice

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/policy"
	"github.com/netsleuth/netsleuth/probes/source"
)

// pods names the pods the traffic on node came from, for titles.
func (in Input) pods(node string) string {
	if in.From != "" {
		return in.From
	}
	return "Pods on " + node
}

// pod names the sender on node, for sentences.
func (in Input) pod(node string) string {
	if in.From != "" {
		return in.From
	}
	return "The pod on node " + node
}

// policyBlocks reports whether the policies deny the source's traffic to
// every endpoint and none of it arrived: then they, not the Service or the
// node, are the answer. It returns the first endpoint's answer.
func policyBlocks(in Input, v Verdict) (*policy.Answer, bool) {
	src, ok := sourceOn(in, v.Node)
	if !ok || len(in.Policy) == 0 || in.expect(-1) || !v.ClusterIPFailed || ops.Arrived(src.Direct) || src.ClusterIP.Arrived() {
		return nil, false
	}
	return in.Policy[0], in.Policy[0] != nil
}

// policyDenied is the Service blocked from the workload by NetworkPolicy,
// in the policy engine's words.
func policyDenied(in Input, a *policy.Answer, ev []string) model.Finding {
	s := in.Service
	return a.Blocked(IDPolicyDenied, &model.Subject{Kind: "Service", Namespace: s.Namespace, Name: s.Name},
		fmt.Sprintf("%s cannot reach Service %s: NetworkPolicy %s denies it", in.From, s.Ref(), strings.Join(a.Deniers(), ", ")), ev)
}

// notEnforced is the policy probe's finding when the policies deny the
// source's traffic to an endpoint that it reached anyway.
func notEnforced(in Input, v Verdict) []model.Finding {
	src, ok := sourceOn(in, v.Node)
	if !ok {
		return nil
	}
	for i, r := range src.Direct {
		if a := in.Policy; i < len(a) && a[i] != nil && !a[i].Allowed() && r.Arrived() {
			line, f := a[i].Compare(policy.Live{Via: src.Agent.Ref(), Result: r, Attempts: 1})
			if f != nil {
				f.Evidence = append(f.Evidence, line)
				return []model.Finding{*f}
			}
		}
	}
	return nil
}

// fromSource reads the workload --from names, "" and nil without one.
func fromSource(ctx context.Context, env *probes.Env, rec probes.Recorder) (string, *corev1.Pod, error) {
	r, ok := source.Given(env.Options)
	if !ok {
		return "", nil, nil
	}
	rec.Stage("reading " + r.String())
	p, err := source.Pod(ctx, env.Kube, r)
	if err != nil {
		return "", nil, err
	}
	if r.String() == p.Namespace+"/"+p.Name {
		return r.String(), p, nil
	}
	return fmt.Sprintf("%s (pod %s/%s)", r, p.Namespace, p.Name), p, nil
}

// withNode adds the source's node to the nodes tried, when the sample left
// it out: its verdict is the answer.
func withNode(ctx context.Context, env *probes.Env, nodes []Node, name string) []Node {
	if slices.ContainsFunc(nodes, func(n Node) bool { return n.Name == name }) {
		return nodes
	}
	n := Node{Name: name}
	if kn, err := env.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err == nil {
		n.IP = kube.InternalIP(*kn)
	}
	return append(nodes, n)
}

// answers is the policy engine's answer for the source's TCP traffic to
// each backend on the port it serves; nil when the policies could not be
// read.
func answers(ctx context.Context, env *probes.Env, rec probes.Recorder, src *corev1.Pod, bs []Backend) []*policy.Answer {
	e, err := policy.Load(ctx, env, rec)
	if err != nil {
		return nil
	}
	from, ok := e.PodEndpoint(src.Namespace + "/" + src.Name)
	if !ok {
		return nil
	}
	out := make([]*policy.Answer, len(bs))
	for i, b := range bs {
		if a, err := netip.ParseAddr(b.IP); err == nil {
			ans := e.Ask(from, a, policy.Port{Port: int32(b.Port), Protocol: corev1.ProtocolTCP})
			out[i] = &ans
		}
	}
	return out
}
