package external

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/capture"
)

// maxCaptures bounds the failing paths captured in one run.
const maxCaptures = 3

// captureFailing captures, for each target a node reaches and its pods do
// not, the pod's retry at the pod's veth and at the node's uplink towards
// the target, and returns the classified packets as evidence.
func captureFailing(ctx context.Context, env *probes.Env, rec probes.Recorder, in Input) map[string][]string {
	out := map[string][]string{}
	var cidrs []string
	for _, cs := range in.PodCIDRs {
		cidrs = append(cidrs, cs...)
	}
	cctx := capture.PodContext(cidrs)
	for _, p := range in.Probes {
		if len(out) == maxCaptures || !ops.Arrived(p.FromNode) || ops.Arrived(p.FromPod) || (p.Policy != nil && !p.Policy.Allowed()) {
			continue // a policy denial is explained by the policy, not by packets
		}
		out[CaptureKey(p.Node, p.Target.Name)] = agent.CaptureOn(ctx, env, rec, agent.Retry{
			Probe: ID, What: fmt.Sprintf("a retry of %s from %s", p.Target.Name, p.Pod.Ref()), Context: cctx,
			Filter: capture.FilterSpec{Hosts: []netip.Addr{p.Target.Addr}, Ports: []uint16{uint16(p.Target.port())}},
			At: []agent.Point{{Node: p.Node, Label: agent.LabelPodVeth, Pod: &p.Pod},
				{Node: p.Node, Label: agent.LabelUplink, RouteTo: p.Target.Addr.String()}},
			Do: func(ctx context.Context) error {
				_, err := env.Agents.Exec(ctx, p.Pod, ops.Request{Ops: p.Target.ops()})
				return err
			},
		})
	}
	return out
}
