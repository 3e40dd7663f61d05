// Package dns is the cluster DNS probe (scenario C). Its configuration half
// reads the kube-dns Service and its EndpointSlices, the CoreDNS pods and
// Corefile, kube-proxy's mode, the NodeLocal DNS cache DaemonSet and every
// kubelet's clusterDNS (configz), and lints NetworkPolicies for blocked DNS
// egress; each verdict names the broken hop and its fix.
package dns

import (
	"context"
	"errors"
	"fmt"
	"time"

	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/clusterdns"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/policy"
	"github.com/netsleuth/netsleuth/probes/servicediag"
)

type probe struct {
	// static skips the live half (unit tests of the configuration half).
	static bool
	// configz reads a node's kubelet configuration; tests replace it.
	configz func(ctx context.Context, env *probes.Env, node string) (*kubeletv1beta1.KubeletConfiguration, error)
}

// New returns the dns probe.
func New() probes.Probe { return probe{configz: snapConfigz} }

// snapConfigz reads node's configz through the run's snapshot (once per run).
func snapConfigz(ctx context.Context, env *probes.Env, node string) (*kubeletv1beta1.KubeletConfiguration, error) {
	return env.Snap().KubeletConfig(ctx, node)
}

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID:       ID,
		Title:    "Cluster DNS hop by hop (CoreDNS, NodeLocal DNS cache)",
		Scenario: "C",
		Description: "Checks the kube-dns Service has ready CoreDNS endpoints, CoreDNS's upstream, kube-proxy's mode, " +
			"the NodeLocal DNS cache on every node, each kubelet's clusterDNS against all of that, and egress " +
			"NetworkPolicies that block udp/53; then queries every hop (NodeLocal cache, kube-dns ClusterIP, each " +
			"CoreDNS pod, the upstream) over UDP and TCP from an agent pod on each node and names the broken hop.",
		RBAC: model.MergePermissions(clusterdns.RBAC, servicediag.RBAC, policy.RBACLoad, kube.RBACNodes, kube.RBACConfigz, agent.RBAC),
		Inputs: []model.Input{{Flag: "target", Description: "a DNS name (host or host:port) to resolve as the external name; default " + DefaultExternalName,
			Kinds: []string{probes.TargetName}}},
		Default: true,
		Agents:  []model.AgentUse{{Kind: model.AgentPod, Sample: true}, {Kind: model.AgentNode}},
	}
}

func (p probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("reading the kube-dns Service, its EndpointSlices, CoreDNS and NodeLocal DNS cache")
	t, err := clusterdns.Discover(ctx, env.Snap())
	if err != nil {
		return err
	}
	in := Input{Topology: t}
	if in.Service, err = serviceFindings(ctx, env); err != nil {
		return err
	}
	rec.Stage("listing nodes")
	all, err := env.Snap().Nodes(ctx)
	if err != nil {
		return err
	}
	nodes, silent := probes.SplitReporting(all)
	for _, f := range probes.Skipped(ID, "read the kubelet clusterDNS (configz) of", kube.EveryNode(all), silent) {
		rec.Finding(f)
	}
	rec.Stage(fmt.Sprintf("reading kubelet clusterDNS of %d node(s) through configz", len(nodes)))
	var errs []error
	in.Nodes, errs = probes.FanOut(ctx, len(nodes), 0, func(ctx context.Context, i int) (NodeDNS, error) {
		nd, err := p.nodeDNS(ctx, env, nodes[i].Name)
		nd.Labels = nodes[i].Labels
		return nd, err
	})
	if err := probes.FirstError(errs); err != nil {
		return err
	}
	in.Policy, in.PolicyErr = blockingPolicies(ctx, env, rec)
	config := Analyze(in)
	for _, f := range config {
		rec.Finding(f)
	}
	if p.static {
		return nil
	}
	return runLive(ctx, env, rec, in, CausesFrom(config))
}

// serviceFindings asks the shared Service diagnosis about kube-dns, the
// same question the services probe asks about every Service.
func serviceFindings(ctx context.Context, env *probes.Env) ([]model.Finding, error) {
	sin, notes, err := servicediag.Load(ctx, env.Snap(), clusterdns.SystemNS, time.Now())
	if err != nil {
		return nil, err
	}
	svcs := sin.Services[:0]
	for _, s := range sin.Services {
		if s.Name == clusterdns.ServiceName {
			svcs = append(svcs, s)
		}
	}
	sin.Services = svcs
	out := servicediag.Analyze(sin)
	for i := range out {
		if out[i].Status.Failing() {
			out[i].Evidence = append(out[i].Evidence, notes...)
		}
	}
	return out, nil
}

func (p probe) nodeDNS(ctx context.Context, env *probes.Env, node string) (NodeDNS, error) {
	nd := NodeDNS{Name: node}
	cfg, err := p.configz(ctx, env, node)
	switch {
	case ctx.Err() != nil:
		return nd, ctx.Err()
	case kube.Forbidden(err):
		nd.ConfigErr = "reading configz needs get on nodes/proxy: " + err.Error()
	case err != nil:
		nd.ConfigErr = err.Error()
	default:
		nd.ClusterDNS, nd.ClusterDomain = cfg.ClusterDNS, cfg.ClusterDomain
	}
	return nd, nil
}

// blockingPolicies runs the policy engine's DNS lint over every namespace
// (or --namespace) and keeps its verdicts that DNS egress is blocked.
func blockingPolicies(ctx context.Context, env *probes.Env, rec probes.Recorder) ([]model.Finding, string) {
	e, err := policy.Load(ctx, env, rec)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err.Error()
		}
		return nil, "NetworkPolicies not readable: " + err.Error()
	}
	rec.Stage("checking NetworkPolicies for blocked DNS egress")
	var out []model.Finding
	for _, f := range e.Lint(env.Namespace) {
		if f.ID == "policy.blocks-dns" {
			out = append(out, f)
		}
	}
	return out, ""
}
