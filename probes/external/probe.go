// Package external is the pod-to-external-subnet probe (scenario A, seed
// 003): every --target is tried from a pod and from the node itself on each
// node; when the node reaches it and the pod does not, the node's
// ip_forward, FORWARD chain and nat POSTROUTING are read by a node agent and
// the one that is wrong is named with its fix.
package external

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/policy"
	"github.com/netsleuth/netsleuth/probes/source"
)

// ID is the probe's identifier for --probe.
const ID = "external"

// Target is one address to try.
type Target struct {
	Name string // as the user wrote it, with the sampled address for CIDRs
	Addr netip.Addr
	Port int    // 0: ICMP and TCP 80
	Net  string // the CIDR given, or Addr/32
}

// ParseTargets parses --target values: an IP, IP:port, or a CIDR (sampled:
// its first host and up to two more spread over it). DNS names are for the
// dns probe and are left out.
func ParseTargets(vals []string) ([]Target, []string) {
	var out []Target
	var bad []string
	for _, v := range vals {
		if k, _ := probes.TargetKind(v); k == probes.TargetName {
			continue
		}
		if pf, err := netip.ParsePrefix(v); err == nil && pf.Addr().Is4() {
			out = append(out, sampleCIDR(pf.Masked())...)
			continue
		}
		host, port := v, 0
		if h, p, err := net.SplitHostPort(v); err == nil {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				bad = append(bad, v)
				continue
			}
			host, port = h, n
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is4() {
			bad = append(bad, v)
			continue
		}
		out = append(out, Target{Name: v, Addr: a, Port: port, Net: a.String() + "/32"})
	}
	return out, bad
}

func sampleCIDR(pf netip.Prefix) []Target {
	size := uint32(1) << (32 - pf.Bits())
	base := pf.Addr().As4()
	b := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	var out []Target
	seen := map[uint32]bool{}
	for _, off := range []uint32{1, size / 2, size - 2} {
		if size < 4 {
			off = 0
		}
		if seen[off] || off >= size {
			continue
		}
		seen[off] = true
		v := b + off
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		out = append(out, Target{Name: fmt.Sprintf("%s (sample of %s)", a, pf), Addr: a, Net: pf.String()})
	}
	return out
}

// port is the TCP port t is tried on.
func (t Target) port() int {
	if t.Port == 0 {
		return 80
	}
	return t.Port
}

// ops is what each end sends to t: an ICMP echo, then a TCP connect.
func (t Target) ops() []ops.Op {
	return []ops.Op{
		{Kind: ops.ICMP, Target: t.Addr.String(), Count: 2, TimeoutMs: 1000},
		{Kind: ops.TCP, Target: t.Addr.String(), Port: t.port(), TimeoutMs: 2000},
	}
}

type probe struct{}

// New returns the external probe.
func New() probes.Probe { return probe{} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID: ID, Title: "Pods and nodes to external targets", Scenario: "A",
		Description: "Tries each --target (IP, IP:port or CIDR sample) with ICMP and TCP from a pod and from the node " +
			"itself (an announced privileged hostNetwork agent) on every node, or with --from from your workload's identity " +
			"on its node. Node fails: no route or target down. Node OK and pod fails: ip_forward, the FORWARD chain, or no " +
			"MASQUERADE/SNAT for the pod CIDR, with the fix; from a workload, the egress NetworkPolicy that denies it.",
		RBAC: model.MergePermissions(agent.RBAC, kube.RBACNodes, source.RBAC, agent.RBACSender, policy.RBACLoad, kube.RBACCNI),
		Inputs: []model.Input{{Flag: "target", Description: "external IP, IP:port or CIDR to reach (repeatable).", Required: true,
			Kinds: []string{probes.TargetIP, probes.TargetCIDR}},
			{Flag: "from", Description: "ask from this workload (namespace/pod or namespace/deployment/name): its traffic sent with its identity (--policy-live: a stand-in, or ephemeral), its egress NetworkPolicies judged",
				Example: "shop/deployment/web", Check: source.Check}},
		Agents: []model.AgentUse{{Kind: model.AgentPod, Sample: true}, {Kind: model.AgentNode, Sample: true}},
	}
}

// AgentsFor is Info().Agents for o: with --from, a node agent on the
// workload's node only (the sender is a stand-in in its own namespace).
func (p probe) AgentsFor(o probes.Options) []model.AgentUse {
	if _, ok := source.Given(o); ok {
		return []model.AgentUse{{Kind: model.AgentNode}}
	}
	return p.Info().Agents
}

// Preflight checks the --from workload has a running pod before anything
// is created.
func (probe) Preflight(ctx context.Context, env *probes.Env) error {
	return source.Preflight(ctx, env.Kube, env.Options)
}

func (probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	targets, bad := ParseTargets(env.Options.Targets)
	if len(targets) == 0 {
		rec.Finding(noTargets(bad))
		return nil
	}
	if len(bad) > 0 {
		defer rec.Finding(noTargets(bad))
	}
	if r, ok := source.Given(env.Options); ok {
		return runFrom(ctx, env, rec, r, targets)
	}
	rec.Stage("listing nodes")
	sample, err := env.AgentNodes(ctx)
	if err != nil {
		return err
	}
	agent.ReportLeftovers(ctx, env, rec, ID)
	probes.RecordCoverage(rec, ID, sample)
	names, cidrs := pick(sample.Nodes)
	in := Input{PodCIDRs: cidrs, BadTargets: bad, CNI: kube.DiscoverCNI(ctx, env.Snap())}
	pods, nodeAgents, notStarted, err := startBoth(ctx, env, rec, names)
	if err != nil {
		return err
	}
	in.NotStarted = notStarted
	rec.Stage(fmt.Sprintf("trying %d target(s) from pods and nodes, and reading node facts", len(targets)))
	in.Probes, in.Facts, err = tryAll(ctx, env, targets, pods, nodeAgents)
	if err != nil {
		return err
	}
	if agent.Enabled(env) {
		in.Captures = captureFailing(ctx, env, rec, in)
	}
	record(rec, Analyze(in))
	return nil
}

func noTargets(bad []string) model.Finding {
	f := model.Finding{ID: IDNoTargets, Status: model.StatusSkip, Title: "No --target given: nothing to try"}
	if len(bad) > 0 {
		f.Status, f.Title = model.StatusError, "Some --target values are not an IPv4 address, IP:port or CIDR"
		f.RootCause = "The targets could not be parsed, so they were not tried."
		f.Evidence = bad
		f.Fixes = []model.Fix{{Description: "Pass targets like 192.168.2.10, 192.168.2.10:443 or 192.168.2.0/24.",
			Commands: []string{"netsleuth check --probe external --target 192.168.2.10:80"}}}
	}
	return f
}

// startBoth starts a pod agent and an announced node agent on every node,
// the two kinds concurrently.
func startBoth(ctx context.Context, env *probes.Env, rec probes.Recorder, names []string) (pods, nodeAgents, notStarted []probes.Agent, err error) {
	type started struct{ ok, failed []probes.Agent }
	res, errs := probes.FanOut(ctx, 2, 2, func(ctx context.Context, i int) (started, error) {
		var s started
		var err error
		if i == 0 {
			s.ok, s.failed, err = agent.StartPods(ctx, env, rec, probes.AgentPod, names)
		} else {
			s.ok, s.failed, err = agent.StartNodes(ctx, env, rec, "compare the node's own view of the targets with its pods'", names)
		}
		return s, err
	})
	if err := probes.FirstError(errs); err != nil {
		return nil, nil, nil, err
	}
	return res[0].ok, res[1].ok, append(res[0].failed, res[1].failed...), nil
}

// pick names the run's sampled nodes and their pod CIDRs.
func pick(ready []corev1.Node) ([]string, map[string][]string) {
	cidrs := map[string][]string{}
	for _, n := range ready {
		cidrs[n.Name] = kube.PodCIDRs(n)
	}
	return kube.Names(ready), cidrs
}

// tryAll sends every target's ops from each pod agent and node agent, and
// reads the node facts in the same exec, concurrently over agents.
func tryAll(ctx context.Context, env *probes.Env, ts []Target, pods, nodeAgents []probes.Agent) ([]Probe, map[string]agent.NodeFacts, error) {
	var req ops.Request
	for _, t := range ts {
		req.Ops = append(req.Ops, t.ops()...)
	}
	nodeReq := ops.Request{Ops: append(append([]ops.Op{}, req.Ops...), agent.FactsRequest().Ops...)}
	all := append(append([]probes.Agent{}, pods...), nodeAgents...)
	resps, errs := probes.FanOut(ctx, len(all), 0, func(ctx context.Context, i int) (ops.Response, error) {
		if i < len(pods) {
			return env.Agents.Exec(ctx, all[i], req)
		}
		return env.Agents.Exec(ctx, all[i], nodeReq)
	})
	if err := probes.FirstError(errs); err != nil {
		return nil, nil, err
	}
	n := len(req.Ops)
	podRes, nodeRes := map[string][]ops.Result{}, map[string][]ops.Result{}
	facts := map[string]agent.NodeFacts{}
	nodeAg := map[string]probes.Agent{}
	for i, a := range all {
		want := n
		if i >= len(pods) {
			want += len(agent.FactsRequest().Ops)
		}
		if len(resps[i].Results) != want {
			return nil, nil, fmt.Errorf("%s answered %d results, want %d", a.Ref(), len(resps[i].Results), want)
		}
		if i < len(pods) {
			podRes[a.Node] = resps[i].Results
			continue
		}
		nodeAg[a.Node] = a
		nodeRes[a.Node] = resps[i].Results[:n]
		facts[a.Node] = agent.FactsFrom(a.Node, ops.Response{Results: resps[i].Results[n:]})
	}
	var out []Probe
	for _, p := range pods {
		na, ok := nodeAg[p.Node]
		if !ok {
			continue
		}
		for i, t := range ts {
			out = append(out, Probe{Node: p.Node, Target: t, Pod: p, NodeAg: na,
				FromPod: podRes[p.Node][2*i : 2*i+2], FromNode: nodeRes[p.Node][2*i : 2*i+2]})
		}
	}
	return out, facts, nil
}
