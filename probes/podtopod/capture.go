package podtopod

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/capture"
)

// maxCaptures bounds the failing pairs captured in one run.
const maxCaptures = 2

// pairKey names a pair's captures.
func pairKey(p Pair) string { return p.From.Pod + "->" + p.To.Pod }

// captureFailing captures one TCP retry of each failing pair (up to
// maxCaptures) along its path: the source pod's veth, the source node's
// interface towards the destination, the destination node's interface
// towards the source, and the destination pod's veth; how the captures
// differ says where the packets stopped.
func captureFailing(ctx context.Context, env *probes.Env, rec probes.Recorder, in Input) map[string][]string {
	out := map[string][]string{}
	cctx := capture.Context{}
	for _, n := range in.Nodes {
		for _, c := range n.PodCIDRs {
			if pf, err := netip.ParsePrefix(c); err == nil {
				cctx.PodCIDRs = append(cctx.PodCIDRs, pf)
			}
		}
	}
	for _, p := range in.Pairs {
		if len(out) == maxCaptures || !p.Failed() || p.TCP.NotListening() {
			continue
		}
		nodes := []string{p.From.Node}
		if !p.SameNode() {
			nodes = append(nodes, p.To.Node)
		}
		rec.Stage(fmt.Sprintf("capturing a retry of %s → %s on its path", p.From.Ref(), p.To.Ref()))
		nodeAgents, _, err := agent.Started(env.Agents.Start(ctx, probes.AgentNode, nodes))
		if err != nil || len(nodeAgents) != len(nodes) {
			out[pairKey(p)] = []string{"capture: the node agents did not start"}
			continue
		}
		out[pairKey(p)] = capturePair(ctx, env, p, nodeAgents, cctx)
	}
	return out
}

func capturePair(ctx context.Context, env *probes.Env, p Pair, nodeAgents []probes.Agent, cctx capture.Context) []string {
	src, _ := netip.ParseAddr(p.From.IP)
	dst, _ := netip.ParseAddr(p.To.IP)
	filter := capture.FilterSpec{Hosts: []netip.Addr{src, dst}, Ports: []uint16{agent.EchoPort}}
	from, err := agent.PodVeth(ctx, env, p.From, filter)
	if err != nil {
		return []string{"capture: " + err.Error()}
	}
	to, err := agent.PodVeth(ctx, env, p.To, filter)
	if err != nil {
		return []string{"capture: " + err.Error()}
	}
	srcNode, dstNode := nodeAgents[0], nodeAgents[len(nodeAgents)-1]
	points := []agent.CapturePoint{{Agent: srcNode, Label: agent.LabelPodVeth + " of the source", Req: from}}
	if !p.SameNode() {
		points = append(points,
			agent.CapturePoint{Agent: srcNode, Label: "route to the destination", Req: agent.CaptureRequest{RouteTo: p.To.IP, Filter: filter}},
			agent.CapturePoint{Agent: dstNode, Label: "route to the source", Req: agent.CaptureRequest{RouteTo: p.From.IP, Filter: filter}})
	}
	points = append(points, agent.CapturePoint{Agent: dstNode, Label: agent.LabelPodVeth + " of the destination", Req: to})
	caps, err := agent.CaptureDuring(ctx, env, points, func(ctx context.Context) error {
		_, err := env.Agents.Exec(ctx, p.From, ops.Request{Ops: []ops.Op{{Kind: ops.TCP, Target: p.To.IP, Port: agent.EchoPort, TimeoutMs: 2000}}})
		return err
	})
	ev := agent.CaptureEvidence(caps, agent.Save(env.Options.CaptureDir, env.RunID, ID, caps), cctx)
	if err != nil {
		ev = append(ev, "capture: the retry failed: "+err.Error())
	}
	return ev
}
