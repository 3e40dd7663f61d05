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
	cctx := capture.Context{}
	for _, cidrs := range in.PodCIDRs {
		for _, c := range cidrs {
			if pf, err := netip.ParsePrefix(c); err == nil {
				cctx.PodCIDRs = append(cctx.PodCIDRs, pf)
			}
		}
	}
	cctx.ClusterCIDRs = cctx.PodCIDRs
	for _, p := range in.Probes {
		if len(out) == maxCaptures || !ops.Arrived(p.FromNode) || ops.Arrived(p.FromPod) || (p.Policy != nil && !p.Policy.Allowed()) {
			continue // a policy denial is explained by the policy, not by packets
		}
		rec.Stage(fmt.Sprintf("capturing the retry of %s from %s at its veth and the uplink of node %s", p.Target.Name, p.Pod.Ref(), p.Node))
		out[CaptureKey(p.Node, p.Target.Name)] = captureOne(ctx, env, p, cctx)
	}
	return out
}

func captureOne(ctx context.Context, env *probes.Env, p Probe, cctx capture.Context) []string {
	filter := capture.FilterSpec{Hosts: []netip.Addr{p.Target.Addr}, Ports: []uint16{uint16(p.Target.port())}}
	veth, err := agent.PodVeth(ctx, env, p.Pod, filter)
	if err != nil {
		return []string{"capture: the pod's veth was not found: " + err.Error()}
	}
	points := []agent.CapturePoint{
		{Agent: p.NodeAg, Label: agent.LabelPodVeth, Req: veth},
		{Agent: p.NodeAg, Label: agent.LabelUplink, Req: agent.CaptureRequest{RouteTo: p.Target.Addr.String(), Filter: filter}},
	}
	caps, err := agent.CaptureDuring(ctx, env, points, func(ctx context.Context) error {
		_, err := env.Agents.Exec(ctx, p.Pod, ops.Request{Ops: p.Target.ops()})
		return err
	})
	ev := agent.CaptureEvidence(caps, agent.Save(env.Options.CaptureDir, env.RunID, ID, caps), cctx)
	if err != nil {
		ev = append(ev, "capture: the retry failed: "+err.Error())
	}
	return ev
}
