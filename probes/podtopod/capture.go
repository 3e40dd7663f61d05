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
	var cidrs []string
	for _, n := range in.Nodes {
		cidrs = append(cidrs, n.PodCIDRs...)
	}
	cctx := capture.PodContext(cidrs)
	for _, p := range in.Pairs {
		if len(out) == maxCaptures || !p.Failed() || p.TCP.NotListening() {
			continue
		}
		out[pairKey(p)] = agent.CaptureOn(ctx, env, rec, retry(env, p, cctx))
	}
	return out
}

// retry is the capture of one TCP retry of a pair along its path.
func retry(env *probes.Env, p Pair, cctx capture.Context) agent.Retry {
	src, _ := netip.ParseAddr(p.From.IP)
	dst, _ := netip.ParseAddr(p.To.IP)
	at := []agent.Point{{Node: p.From.Node, Label: agent.LabelPodVeth + " of the source", Pod: &p.From}}
	if !p.SameNode() {
		at = append(at,
			agent.Point{Node: p.From.Node, Label: "route to the destination", RouteTo: p.To.IP},
			agent.Point{Node: p.To.Node, Label: "route to the source", RouteTo: p.From.IP})
	}
	at = append(at, agent.Point{Node: p.To.Node, Label: agent.LabelPodVeth + " of the destination", Pod: &p.To})
	return agent.Retry{Probe: ID, What: fmt.Sprintf("a retry of %s → %s", p.From.Ref(), p.To.Ref()), At: at, Context: cctx,
		Filter: capture.FilterSpec{Hosts: []netip.Addr{src, dst}, Ports: []uint16{agent.EchoPort}},
		Do: func(ctx context.Context) error {
			_, err := env.Agents.Exec(ctx, p.From, ops.Request{Ops: []ops.Op{{Kind: ops.TCP, Target: p.To.IP, Port: agent.EchoPort, TimeoutMs: 2000}}})
			return err
		}}
}
