// Package dns is the cluster DNS probe (scenario C). Its configuration half
// reads the kube-dns Service and its EndpointSlices, the CoreDNS pods and
// Corefile, kube-proxy's mode, the NodeLocal DNS cache DaemonSet and every
// kubelet's clusterDNS (configz), and lints NetworkPolicies for blocked DNS
// egress; each verdict names the broken hop and its fix.
package dns

import (
	"context"
	"errors"

	"k8s.io/client-go/kubernetes"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/policy"
)

type probe struct {
	// static skips the live half (unit tests of the configuration half).
	static bool
	// configz reads a node's kubelet configuration; tests replace it.
	configz func(ctx context.Context, c kubernetes.Interface, node string) (*kubeletv1beta1.KubeletConfiguration, error)
}

// New returns the dns probe.
func New() probes.Probe { return probe{configz: kube.KubeletConfig} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID:       ID,
		Title:    "Cluster DNS hop by hop (CoreDNS, NodeLocal DNS cache)",
		Scenario: "C",
		Description: "Checks the kube-dns Service has ready CoreDNS endpoints, CoreDNS's upstream, kube-proxy's mode, " +
			"the NodeLocal DNS cache on every node, each kubelet's clusterDNS against all of that, and egress " +
			"NetworkPolicies that block udp/53; then queries every hop (NodeLocal cache, kube-dns ClusterIP, each " +
			"CoreDNS pod, the upstream) over UDP and TCP from an agent pod on each node and names the broken hop.",
		RBAC: append([]model.Permission{
			{Resource: "services", Verbs: []string{"get"}},
			{Group: "discovery.k8s.io", Resource: "endpointslices", Verbs: []string{"list"}},
			{Resource: "pods", Verbs: []string{"list"}},
			{Resource: "configmaps", Verbs: []string{"get"}},
			{Group: "apps", Resource: "daemonsets", Verbs: []string{"get"}},
			{Resource: "nodes", Verbs: []string{"list"}},
			{Resource: "nodes", Subresource: "proxy", Verbs: []string{"get"}},
			{Resource: "namespaces", Verbs: []string{"list"}},
			{Group: "networking.k8s.io", Resource: "networkpolicies", Verbs: []string{"list"}},
		}, agent.RBAC...),
		Inputs:  []model.Input{{Flag: "target", Description: "a DNS name (host or host:port) to resolve as the external name; default " + DefaultExternalName}},
		Default: true,
	}
}

func (p probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("reading the kube-dns Service, its EndpointSlices, CoreDNS and NodeLocal DNS cache")
	t, err := Discover(ctx, env.Kube)
	if err != nil {
		return err
	}
	rec.Stage("listing nodes")
	nodes, err := kube.Nodes(ctx, env.Kube)
	if err != nil {
		return err
	}
	in := Input{Topology: t}
	for _, n := range nodes {
		rec.Stage("reading kubelet clusterDNS of node " + n.Name)
		nd, err := p.nodeDNS(ctx, env.Kube, n.Name)
		if err != nil {
			return err
		}
		in.Nodes = append(in.Nodes, nd)
	}
	in.Policy, in.PolicyErr = blockingPolicies(ctx, env, rec)
	for _, f := range Analyze(in) {
		rec.Finding(f)
	}
	if p.static {
		return nil
	}
	return runLive(ctx, env, rec, in)
}

func (p probe) nodeDNS(ctx context.Context, c kubernetes.Interface, node string) (NodeDNS, error) {
	nd := NodeDNS{Name: node}
	cfg, err := p.configz(ctx, c, node)
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
