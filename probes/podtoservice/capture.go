package podtoservice

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/capture"
)

// maxCaptures bounds the failing Service paths captured in one run.
const maxCaptures = 2

// captureFailing captures, for each node whose Service path fails (up to
// maxCaptures), one retry of that path and returns what the packets show,
// by node: a ClusterIP that fails from the node's pod is retried from that
// pod, captured at its veth, at the node's route to an endpoint on another
// node and at that node's route back to the pod; a NodePort that fails
// from every node is retried from a pod on another node, captured at its
// veth and at the uplink of the node whose NodePort it is.
func captureFailing(ctx context.Context, env *probes.Env, rec probes.Recorder, in Input) map[string][]string {
	out := map[string][]string{}
	for _, v := range Judge(in) {
		if len(out) == maxCaptures || !v.Failing() {
			continue
		}
		if _, blocked := policyBlocks(in, v); blocked {
			continue // a policy denial is explained by the policy, not by packets
		}
		if r, ok := planRetry(in, v); ok {
			r.Do = func(ctx context.Context) error {
				_, err := env.Agents.Exec(ctx, *r.At[0].Pod, ops.Request{Ops: []ops.Op{r.op}})
				return err
			}
			out[v.Node] = agent.CaptureOn(ctx, env, rec, r.Retry)
		}
	}
	return out
}

// serviceRetry is the capture of one retry of a failing Service path and
// the operation the source pod retries.
type serviceRetry struct {
	agent.Retry
	op ops.Op
}

// planRetry plans the capture of node v.Node's failing Service path: where to
// capture, what, and what to send; false when no pod agent can send it.
func planRetry(in Input, v Verdict) (serviceRetry, bool) {
	s := in.Service
	if v.ClusterIPFailed {
		src, ok := sourceOn(in, v.Node)
		if !ok {
			return serviceRetry{}, false
		}
		r := serviceRetry{Retry: agent.Retry{Probe: ID}, op: s.op(s.ClusterIP, s.Port)}
		r.What = fmt.Sprintf("a retry of Service %s's ClusterIP %s:%d from %s", s.Ref(), s.ClusterIP, s.Port, src.Agent.Ref())
		r.At = []agent.Point{{Node: v.Node, Label: agent.LabelPodVeth + " of the source", Pod: &src.Agent}}
		hosts, ports := []string{s.ClusterIP}, []uint16{uint16(s.Port)}
		for _, b := range s.Backends {
			hosts, ports = append(hosts, b.IP), append(ports, uint16(b.Port))
		}
		if i := slices.IndexFunc(s.Backends, func(b Backend) bool { return b.Node != "" && b.Node != v.Node }); i >= 0 {
			b := s.Backends[i]
			r.At = append(r.At,
				agent.Point{Node: v.Node, Label: "route to endpoint " + b.IP, RouteTo: b.IP},
				agent.Point{Node: b.Node, Label: "route to the source", RouteTo: src.Agent.IP})
		}
		r.Filter = filter(hosts, ports)
		return r, true
	}
	ip := nodeIP(in, v.Node)
	i := slices.IndexFunc(in.Sources, func(src Source) bool {
		return src.Agent.Node != v.Node && slices.ContainsFunc(src.Direct, Reached)
	})
	if ip == "" || i < 0 || s.NodePort == 0 {
		return serviceRetry{}, false
	}
	src := in.Sources[i].Agent
	r := serviceRetry{Retry: agent.Retry{Probe: ID}, op: s.op(ip, s.NodePort)}
	r.What = fmt.Sprintf("a retry of Service %s's NodePort %s:%d from %s", s.Ref(), ip, s.NodePort, src.Ref())
	r.At = []agent.Point{{Node: src.Node, Label: agent.LabelPodVeth + " of the source", Pod: &src},
		{Node: v.Node, Label: "interface holding " + ip, Carrying: ip}}
	r.Filter = filter([]string{ip}, []uint16{uint16(s.NodePort)})
	return r, true
}

// filter admits the hosts' traffic on the ports (addresses that do not
// parse are left out).
func filter(hosts []string, ports []uint16) capture.FilterSpec {
	var f capture.FilterSpec
	for _, h := range hosts {
		if a, err := netip.ParseAddr(h); err == nil && !slices.Contains(f.Hosts, a) {
			f.Hosts = append(f.Hosts, a)
		}
	}
	for _, p := range ports {
		if !slices.Contains(f.Ports, p) {
			f.Ports = append(f.Ports, p)
		}
	}
	return f
}

func nodeIP(in Input, node string) string {
	for _, n := range in.Nodes {
		if n.Name == node {
			return n.IP
		}
	}
	return ""
}
