// Package podtoservice is the pod-to-service probe (scenario L, traffic
// half): pod agents on every node connect to a Service's ClusterIP, to each
// node's NodePort and, for comparison, straight to its endpoints. A Service
// path that fails where the endpoints answer is kube-proxy's: a node agent
// reads that node's nat table and says whether its rules are gone, stale, or
// present but bypassed, with the fix.
package podtoservice

import (
	"context"
	"fmt"
	"sync"
	"time"

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
const ID = "pod-to-service"

// MaxBackends bounds the backends one run tries directly.
const MaxBackends = 10

// A source whose results are not what the policies predict tries again
// for settle after its first answer (kube-proxy programs a new Service, and
// then its endpoints, a second or two late; an enforcer a new stand-in's
// rules), retryPause apart: a refusal right before kube-proxy's sync costs
// a pause, not a long round. The window starts at the answer, not at the
// ask: an exec the agent shares with other probes' requests may come back
// only after their timeouts. Variables so tests can shorten them.
var (
	settle     = 4 * time.Second
	retryPause = 400 * time.Millisecond
)

type probe struct{}

// New returns the pod-to-service probe.
func New() probes.Probe { return probe{} }

func (probe) Info() model.ProbeInfo {
	rbac := model.MergePermissions(agent.RBAC, kube.RBACNodes, kube.RBACKubeProxy, rbacService, source.RBAC, agent.RBACSender, policy.RBACLoad)
	return model.ProbeInfo{
		ID: ID, Title: "Pod to Service: ClusterIP and NodePort from every node", Scenario: "L",
		Description: "Puts a temporary NodePort Service in front of the run's pod agents (or uses --service), then from a pod " +
			"on every node (or, with --from, from your workload's identity on its node, its NetworkPolicies judged) connects " +
			"to its ClusterIP, to every node's NodePort and straight to each endpoint. Where the " +
			"Service fails but the endpoints answer, an announced node agent reads that node's nat table and names " +
			"kube-proxy's state (rules gone, Service not programmed, bypassed) with the fix. A failing Service path is " +
			"retried once and captured on its nodes (--capture=off disables it).",
		RBAC: rbac,
		Inputs: []model.Input{{Flag: "service", Description: "Service to test as namespace/name (default: a temporary one).",
			Example: "default/my-service", Check: CheckService},
			{Flag: "from", Description: "ask from this workload (namespace/pod or namespace/deployment/name): its traffic sent with its identity on its node (--policy-live: a stand-in, or ephemeral), NetworkPolicy judged for it",
				Example: "shop/deployment/web", Check: source.Check}},
		Default: true,
		Agents:  []model.AgentUse{{Kind: model.AgentPod, Sample: true}, {Kind: model.AgentNode}},
	}
}

// Preflight checks the --from workload has a running pod before anything
// is created.
func (probe) Preflight(ctx context.Context, env *probes.Env) error {
	return source.Preflight(ctx, env.Kube, env.Options)
}

// AgentsFor is Info().Agents for o: --from with --service sends only as
// the workload, so no pod agents stand behind a temporary Service.
func (p probe) AgentsFor(o probes.Options) []model.AgentUse {
	if _, ok := source.Given(o); ok && o.Service != "" {
		return []model.AgentUse{{Kind: model.AgentNode}}
	}
	return p.Info().Agents
}

func (probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	if env.Agents == nil {
		return agent.ErrNoAgents
	}
	from, src, err := fromSource(ctx, env, rec)
	if err != nil {
		return err
	}
	rec.Stage("listing nodes")
	sample, err := env.AgentNodes(ctx)
	if err != nil {
		return err
	}
	agent.ReportLeftovers(ctx, env, rec, ID)
	probes.RecordCoverage(rec, ID, sample)
	in := Input{Nodes: agentNodes(sample.Nodes), From: from}
	// The temporary Service is made while the agents start, so the
	// EndpointSlice controller and kube-proxy have it before they run.
	var temp Service
	var tempErr error
	var made sync.WaitGroup
	if env.Options.Service == "" {
		made.Go(func() { temp, tempErr = createService(ctx, env, rec) })
	}
	var pods []probes.Agent
	if src == nil || env.Options.Service == "" { // the sources, or the temporary Service's backends
		pods, in.NotStarted, err = agent.StartPods(ctx, env, rec, probes.AgentPod, nodeNames(in.Nodes))
	}
	made.Wait()
	if err != nil {
		return err
	}
	if tempErr != nil {
		return tempErr
	}
	svc, bad, err := service(ctx, env, rec, temp, pods)
	if err != nil {
		return err
	}
	if bad != nil {
		rec.Finding(*bad)
		return nil
	}
	in.Service = svc
	in.Proxy = kube.DiscoverKubeProxy(ctx, env.Snap())
	senders := pods
	if src != nil {
		if senders, err = sendAs(ctx, env, rec, &in, src); err != nil {
			return err
		}
	}
	if len(svc.Backends) > 0 && len(senders) > 0 {
		rec.Stage(fmt.Sprintf("connecting to %s's ClusterIP, NodePorts and endpoints from %d pod(s)", svc.Ref(), len(senders)))
		if in.Sources, err = measure(ctx, env, in, senders); err != nil {
			return err
		}
	}
	if failing := FailingNodes(in); len(failing) > 0 {
		facts, failed, err := agent.ReadNodeFacts(ctx, env, rec, "read kube-proxy's rules where the Service fails", failing)
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

// sendAs starts the agent sending as the --from pod (the one source of the
// run) and asks the policy engine about its traffic to each backend.
func sendAs(ctx context.Context, env *probes.Env, rec probes.Recorder, in *Input, src *corev1.Pod) ([]probes.Agent, error) {
	sender, err := source.Start(ctx, env, rec, src)
	if err != nil {
		return nil, err
	}
	if sender.Err != nil {
		in.NotStarted = append(in.NotStarted, sender)
		return nil, nil
	}
	in.Nodes = withNode(ctx, env, in.Nodes, sender.Node)
	in.Policy = answers(ctx, env, rec, src, in.Service.Backends)
	return []probes.Agent{sender}, nil
}

// agentNodes are the run's sampled nodes with their InternalIP, by name.
func agentNodes(sample []corev1.Node) []Node {
	out := make([]Node, 0, len(sample))
	for _, n := range sample {
		out = append(out, Node{Name: n.Name, IP: kube.InternalIP(n)})
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

// request is what the pod agent sends: the ClusterIP, every endpoint, every
// node's NodePort. The temporary Service answers HTTP naming its backend.
func request(in Input) ops.Request {
	s := in.Service
	req := ops.Request{Ops: []ops.Op{s.op(s.ClusterIP, s.Port)}}
	for _, b := range s.Backends {
		req.Ops = append(req.Ops, s.op(b.IP, b.Port))
	}
	if s.NodePort > 0 {
		for _, n := range in.Nodes {
			req.Ops = append(req.Ops, s.op(n.IP, s.NodePort))
		}
	}
	return req
}

// op connects to target:port: HTTP for the temporary Service (its agents
// answer naming themselves), TCP for the user's.
func (s Service) op(target string, port int) ops.Op {
	if s.Temporary {
		return ops.Op{Kind: ops.HTTP, Target: target, Port: port, Path: "/", TimeoutMs: 2000}
	}
	return ops.Op{Kind: ops.TCP, Target: target, Port: port, TimeoutMs: 2000}
}

// measure runs the request from every sender; a source whose results are
// not what the policies predict tries again until settle has passed since
// its first answer (kube-proxy programs a new Service within a second or
// two, an enforcer a new stand-in's rules).
func measure(ctx context.Context, env *probes.Env, in Input, pods []probes.Agent) ([]Source, error) {
	req := request(in)
	out, errs := probes.FanOut(ctx, len(pods), 0, func(ctx context.Context, i int) (Source, error) {
		var src Source
		var first time.Time
		for {
			resp, err := env.Agents.Exec(ctx, pods[i], req)
			if err != nil {
				return src, err
			}
			if len(resp.Results) != len(req.Ops) {
				return src, fmt.Errorf("%s answered %d results, want %d", pods[i].Ref(), len(resp.Results), len(req.Ops))
			}
			if first.IsZero() {
				first = time.Now()
			}
			src = newSource(in, pods[i], resp.Results)
			if in.settled(resp.Results) || time.Since(first)+retryPause > settle {
				return src, nil
			}
			select {
			case <-ctx.Done():
				return src, nil
			case <-time.After(retryPause):
			}
		}
	})
	if err := probes.FirstError(errs); err != nil {
		return nil, err
	}
	return out, nil
}

func newSource(in Input, a probes.Agent, rs []ops.Result) Source {
	nb := len(in.Service.Backends)
	s := Source{Agent: a, ClusterIP: rs[0], Direct: rs[1 : 1+nb], NodePorts: map[string]ops.Result{}}
	if in.Service.NodePort > 0 {
		for i, n := range in.Nodes {
			s.NodePorts[n.Name] = rs[1+nb+i]
		}
	}
	return s
}
