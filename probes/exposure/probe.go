// Package exposure is the security exposure probe (scenario I, seed 004
// §12): from a pod on every node it tries what pods should never use — the
// cloud metadata address, etcd's client port and the API server's insecure
// port on the control plane, the kubelet's read-only port, anonymous access
// to the kubelet API — and NodePorts open on node addresses. Each reachable
// one is a finding with an egress NetworkPolicy and the component-side fix.
//
// It is not a default probe: its metadata target (--metadata-address,
// default 169.254.169.254:80) is traffic to the cloud provider, which a user
// asks for explicitly.
package exposure

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// ID is the probe's identifier for --probe.
const ID = "exposure"

// DefaultMetadata is the cloud metadata address tried without --metadata-address.
const DefaultMetadata = "169.254.169.254:80"

// Bounds and well-known ports.
const (
	MaxNodePorts    = 20
	PortEtcd        = 2379
	PortKubelet     = 10250
	PortReadOnly    = 10255
	PortAPIInsecure = 8080
)

// NodeInfo is a node as the plan needs it.
type NodeInfo struct {
	Name, IP     string
	ControlPlane bool
}

// NodePortSvc is a NodePort Service's first TCP NodePort.
type NodePortSvc struct {
	Ref  string // ns/name
	Port int
}

// PlanInput is what the checks are derived from.
type PlanInput struct {
	Metadata     netip.AddrPort
	Nodes        []NodeInfo
	APIServerIPs []string // the default/kubernetes endpoints
	NodePorts    []NodePortSvc
}

// Plan lists the checks: metadata; etcd and the insecure port on every
// control-plane address; the kubelet's ports on every node; one node address
// per NodePort Service.
func Plan(in PlanInput) []Check {
	out := []Check{{Kind: Metadata, Addr: in.Metadata.Addr().String(), Port: int(in.Metadata.Port())}}
	nodeOf := map[string]string{}
	var cps []string
	for _, n := range in.Nodes {
		nodeOf[n.IP] = n.Name
		if n.ControlPlane {
			cps = append(cps, n.IP)
		}
	}
	for _, ip := range in.APIServerIPs {
		if !slices.Contains(cps, ip) {
			cps = append(cps, ip)
		}
	}
	for _, ip := range cps {
		out = append(out, Check{Kind: Etcd, Addr: ip, Port: PortEtcd, Node: nodeOf[ip]},
			Check{Kind: APIServerInsecure, Addr: ip, Port: PortAPIInsecure, Node: nodeOf[ip]})
	}
	for _, n := range in.Nodes {
		out = append(out, Check{Kind: KubeletAPI, Addr: n.IP, Port: PortKubelet, Node: n.Name},
			Check{Kind: KubeletReadOnly, Addr: n.IP, Port: PortReadOnly, Node: n.Name})
	}
	if len(in.Nodes) > 0 {
		for _, s := range in.NodePorts[:min(len(in.NodePorts), MaxNodePorts)] {
			out = append(out, Check{Kind: NodePort, Addr: in.Nodes[0].IP, Port: s.Port, Node: in.Nodes[0].Name, Service: s.Ref})
		}
	}
	return out
}

type probe struct{}

// New returns the exposure probe.
func New() probes.Probe { return probe{} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID: ID, Title: "Security exposure from pods: metadata, etcd, kubelet, insecure API port, NodePorts", Scenario: "I",
		Description: "From a restricted pod on every node, tries the cloud metadata address (--metadata-address), etcd 2379 and " +
			"the API server's insecure port 8080 on control-plane addresses, the kubelet's read-only port 10255 and anonymous " +
			"GET /pods on 10250 (401/403 is normal, 200 fails) on every node, and one node address per NodePort Service. " +
			"Not a default probe: it sends traffic to the metadata address only when asked.",
		RBAC: model.MergePermissions(agent.RBAC, kube.RBACNodes, kube.RBACServices, rbacAPIServer),
		Inputs: []model.Input{{Flag: "metadata-address", Description: "cloud metadata host:port to try (default " + DefaultMetadata + ").",
			Example: DefaultMetadata, Check: CheckMetadata}},
		Agents: []model.AgentUse{{Kind: model.AgentPod, Sample: true}},
	}
}

// ParseMetadata parses --metadata-address (IPv4 host:port).
func ParseMetadata(v string) (netip.AddrPort, error) {
	if v == "" {
		v = DefaultMetadata
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return netip.AddrPort{}, err
	}
	a, err := netip.ParseAddr(host)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p < 1 || p > 65535 {
		return netip.AddrPort{}, fmt.Errorf("%q is not IP:port", v)
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

func (probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	md, err := ParseMetadata(env.Options.MetadataAddress)
	if err != nil {
		rec.Finding(model.Finding{ID: IDBadMetadata, Status: model.StatusError, Title: "--metadata-address is not host:port",
			RootCause: fmt.Sprintf("--metadata-address %q cannot be parsed (%v), so nothing was tried.", env.Options.MetadataAddress, err),
			Fixes:     []model.Fix{{Description: "Pass an IP and port:", Commands: []string{"netsleuth check --probe exposure --metadata-address 169.254.169.254:80"}}}})
		return nil
	}
	rec.Stage("listing nodes, API server endpoints and NodePort Services")
	pin, cidrs, err := discover(ctx, env, md)
	if err != nil {
		return err
	}
	agent.ReportLeftovers(ctx, env, rec, ID)
	if sample, err := env.AgentNodes(ctx); err == nil {
		probes.RecordCoverage(rec, ID, sample)
	}
	var names []string
	for _, n := range pin.Nodes {
		names = append(names, n.Name)
	}
	pods, failed, err := agent.StartPods(ctx, env, rec, probes.AgentPod, names)
	if err != nil {
		return err
	}
	in := Input{Checks: Plan(pin), PodCIDRs: cidrs, NotStarted: failed}
	rec.Stage(fmt.Sprintf("trying %d exposed address(es) from %d pod(s)", len(in.Checks), len(pods)))
	if in.Seen, err = try(ctx, env, in.Checks, pods); err != nil {
		return err
	}
	for _, f := range Analyze(in) {
		rec.Finding(f)
	}
	return nil
}

// discover lists the run's sampled nodes (control-plane by label), the API server's
// endpoints and the NodePort Services not made by netsleuth.
// rbacAPIServer is what the read of the kubernetes Service's EndpointSlices
// (the API server addresses) needs.
var rbacAPIServer = []model.Permission{{Group: "discovery.k8s.io", Resource: "endpointslices", Verbs: []string{"list"}}}

func discover(ctx context.Context, env *probes.Env, md netip.AddrPort) (PlanInput, []string, error) {
	in := PlanInput{Metadata: md}
	sample, err := env.AgentNodes(ctx)
	if err != nil {
		return in, nil, err
	}
	var cidrs []string
	for _, n := range sample.Nodes {
		ni := NodeInfo{Name: n.Name, ControlPlane: hasLabel(n, "node-role.kubernetes.io/control-plane") || hasLabel(n, "node-role.kubernetes.io/master")}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && ni.IP == "" {
				ni.IP = a.Address
			}
		}
		in.Nodes = append(in.Nodes, ni)
		cidrs = append(cidrs, n.Spec.PodCIDRs...)
	}
	slices.SortFunc(in.Nodes, func(a, b NodeInfo) int { return strings.Compare(a.Name, b.Name) })
	sl, err := env.Kube.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	if err != nil {
		return in, nil, fmt.Errorf("listing the API server's endpoints: %w", err)
	}
	for _, s := range sl.Items {
		for _, e := range s.Endpoints {
			in.APIServerIPs = append(in.APIServerIPs, e.Addresses...)
		}
	}
	svcs, err := kube.Services(ctx, env.Kube, "")
	if err != nil {
		return in, nil, err
	}
	in.NodePorts = NodePorts(svcs)
	return in, cidrs, nil
}

// NodePorts lists the first TCP NodePort of every NodePort or LoadBalancer
// Service that netsleuth did not create.
func NodePorts(svcs []corev1.Service) []NodePortSvc {
	var out []NodePortSvc
	for _, s := range svcs {
		if s.Labels[agent.LabelManagedBy] == agent.ManagedBy {
			continue
		}
		for _, p := range s.Spec.Ports {
			if p.NodePort > 0 && (p.Protocol == corev1.ProtocolTCP || p.Protocol == "") {
				out = append(out, NodePortSvc{Ref: s.Namespace + "/" + s.Name, Port: int(p.NodePort)})
				break
			}
		}
	}
	return out
}

func hasLabel(n corev1.Node, k string) bool { _, ok := n.Labels[k]; return ok }

// try runs every check from every pod agent, one exec per agent.
func try(ctx context.Context, env *probes.Env, checks []Check, pods []probes.Agent) ([][]Seen, error) {
	req := opsRequest(checks)
	resps, errs := probes.FanOut(ctx, len(pods), 0, func(ctx context.Context, i int) (ops.Response, error) {
		return env.Agents.Exec(ctx, pods[i], req)
	})
	if err := probes.FirstError(errs); err != nil {
		return nil, err
	}
	out := make([][]Seen, len(checks))
	for k, resp := range resps {
		if len(resp.Results) != len(req.Ops) {
			return nil, fmt.Errorf("%s answered %d results, want %d", pods[k].Ref(), len(resp.Results), len(req.Ops))
		}
		for i, r := range resp.Results {
			out[i] = append(out[i], Seen{From: pods[k], Result: r})
		}
	}
	for i := range out {
		slices.SortFunc(out[i], func(a, b Seen) int { return strings.Compare(a.From.Node, b.From.Node) })
	}
	return out, nil
}
