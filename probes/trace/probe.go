package trace

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/capture"
	"github.com/netsleuth/netsleuth/probes/clusterdns"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/nodenet"
	"github.com/netsleuth/netsleuth/probes/policy"
	"github.com/netsleuth/netsleuth/probes/servicediag"
	"github.com/netsleuth/netsleuth/probes/source"
)

// ID is the probe's identifier for --probe.
const ID = "trace"

type probe struct{}

// New returns the trace probe; the trace command runs it.
func New() probes.Probe { return probe{} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID: ID, Title: "Trace one connection from your workload, layer by layer", Scenario: "M",
		Description: "Walks one connection from --from (a pod, a workload or a node) to --to (a pod, a Service, an address or " +
			"a DNS name): name resolution as the source does it, the Service and its endpoints, egress and ingress policy, the " +
			"source node's kube-proxy rules, forwarding, routes and NAT, the destination, and live traffic sent with the " +
			"source's identity (a stand-in pod with its labels on its node, or an ephemeral container in it). Names the first " +
			"broken hop with its root cause and fix. Run it as `netsleuth trace FROM TO`.",
		RBAC: model.MergePermissions(rbacResolve, rbacGather, rbacNode, policy.RBACLoad, clusterdns.RBAC, servicediag.RBAC,
			kube.RBACKubeProxy, kube.RBACConfigz, kube.RBACCNI, agent.RBAC, agent.RBACSender),
		Inputs: []model.Input{{Flag: "from", Description: "the source: namespace/pod, namespace/deployment/name or node/NAME.",
			Example: "shop/deployment/web", Check: CheckFrom, With: "to"},
			{Flag: "to", Description: "the destination: namespace/pod, namespace/svc/name, an IP or CIDR, or a DNS name, with :port[/proto].",
				Example: "shop/svc/api:8080", Check: CheckTo, With: "from"}},
		Agents: []model.AgentUse{{Kind: model.AgentNode}},
	}
}

// session is one trace run: its plan, agents and what it gathered.
type session struct {
	env    *probes.Env
	rec    probes.Recorder
	plan   *Plan
	sender probes.Agent
	node   probes.Agent // the source node's agent
	in     Input
}

func (probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	if env.Agents == nil {
		return agent.ErrNoAgents
	}
	spec, err := Parse(env.Options.From, env.Options.To, env.Options.TracePort)
	if err != nil {
		return err
	}
	rec.Stage("resolving " + spec.From() + " and " + spec.To())
	plan, err := Resolve(ctx, env.Kube, spec)
	if err != nil {
		return err
	}
	s := &session{env: env, rec: rec, plan: plan, in: Input{From: spec.From(), To: spec.To(), Port: spec.Port, Proto: spec.Proto, SrcNode: plan.Node}}
	if spec.PortDefaulted {
		s.in.Notes = append(s.in.Notes, "no port given: tried tcp/80")
	}
	if err := s.startAgents(ctx); err != nil {
		return err
	}
	if !s.resolveName(ctx) {
		s.record()
		return nil
	}
	s.destination(ctx)
	s.policy(ctx)
	s.nodes(ctx)
	s.live(ctx)
	s.record()
	return nil
}

func (s *session) record() {
	for _, f := range Analyze(s.in) {
		s.rec.Finding(f)
	}
}

// startAgents starts the sender (a stand-in for the source pod, an
// ephemeral container in it, or the source node's agent) and the source
// node's agent.
func (s *session) startAgents(ctx context.Context) error {
	p := s.plan
	nodes, failed, err := agent.StartNodes(ctx, s.env, s.rec, "read node "+p.Node+"'s routes, forwarding, NAT and kube-proxy rules for the trace", []string{p.Node})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return failed[0].Err
	}
	s.node = nodes[0]
	if p.Source == nil || p.Source.Spec.HostNetwork { // a hostNetwork pod's traffic is its node's
		s.sender, s.in.HostSend = s.node, true
		s.in.SrcIP = hostIP(ctx, s.env, p.Node)
		s.in.SenderRef = s.node.Ref()
		return nil
	}
	a, err := source.Start(ctx, s.env, s.rec, p.Source)
	if err != nil {
		return err
	}
	if a.Err != nil {
		return fmt.Errorf("the agent sending as %s/%s did not start: %w", p.Source.Namespace, p.Source.Name, a.Err)
	}
	s.sender, s.in.SenderRef = a, a.Ref()
	s.in.SrcIP, _ = netip.ParseAddr(a.IP)
	if s.in.SrcIP != (netip.Addr{}) && a.IP != p.Source.Status.PodIP {
		s.in.Notes = append(s.in.Notes, fmt.Sprintf("sent by a stand-in with %s/%s's labels on its node (%s), not by the pod itself (%s)", p.Source.Namespace, p.Source.Name, a.IP, p.Source.Status.PodIP))
	}
	return nil
}

// rbacNode is what hostIP and the node facts read: the node.
var rbacNode = []model.Permission{{Resource: "nodes", Verbs: []string{"get"}}}

func hostIP(ctx context.Context, env *probes.Env, node string) netip.Addr {
	n, err := env.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(kube.InternalIP(*n))
	return a
}

// resolveName resolves a DNS-name destination from the sender, through its
// resolv.conf and search path as the source would, and classifies the
// answer; on failure it gathers the shared findings that explain it.
func (s *session) resolveName(ctx context.Context) bool {
	p := s.plan
	if p.ToKind != ToName {
		return true
	}
	s.in.Name = p.ToName
	s.rec.Stage("resolving " + p.ToName + " as the source does")
	res, err := s.env.Agents.Exec(ctx, s.sender, dnsRequest(p.ToName))
	if err != nil || res.Results[0].DNS == nil || res.Results[0].DNS.Search == nil {
		s.in.DNSFailed = fmt.Sprintf("the resolution could not run: %v", err)
		return false
	}
	sr := res.Results[0].DNS.Search
	s.in.DNSEvidence = searchEvidence(sr)
	a, perr := netip.ParseAddr(sr.Address)
	if sr.ResolvedAs == "" || perr != nil {
		s.in.DNSFailed = lastRcode(sr)
		s.in.DNSCauses = dnsCauses(ctx, s.env, s.rec, p)
		return false
	}
	s.in.Resolved, p.ToAddr, p.ToKind = a.String(), a, ToAddress
	if err := p.Classify(ctx, s.env.Kube); err != nil {
		s.in.Notes = append(s.in.Notes, "could not look the address up in the cluster: "+err.Error())
	}
	return true
}

func dnsRequest(name string) ops.Request {
	spec := dnsquerySpec(name)
	return ops.Request{Ops: []ops.Op{{Kind: ops.DNS, DNS: &spec}}}
}

func lastRcode(sr *searchResult) string {
	if sr.Error != "" {
		return sr.Error
	}
	if len(sr.Steps) == 0 {
		return "no query was sent"
	}
	last := sr.Steps[len(sr.Steps)-1]
	return fmt.Sprintf("the last query (%s %s via %s) got %s", strings.TrimSuffix(last.Query, "."), last.Type, sr.Server, last.Rcode)
}

// destination fills in what the destination is: a Service (its shared
// diagnosis, ports and endpoints, tried directly), a pod or an address.
func (s *session) destination(ctx context.Context) {
	p := s.plan
	s.in.DestKind = p.ToKind
	switch p.ToKind {
	case ToService:
		s.service(ctx)
	case ToPod:
		s.in.Dest, _ = netip.ParseAddr(p.DestPod.Status.PodIP)
		s.in.DestNode = p.DestPod.Spec.NodeName
	default:
		s.in.Dest, s.in.DestNet = p.ToAddr, p.ToNet
	}
}

// captureLive captures the failing live attempt at the sender's veth (and,
// off the cluster, at the node's uplink) while it is retried.
func (s *session) captureLive(ctx context.Context, req ops.Request) {
	if !agent.Enabled(s.env) || s.in.HostSend {
		return
	}
	node, sender := s.node.Node, s.sender
	at := []agent.Point{{Node: node, Label: agent.LabelPodVeth, Pod: &sender}}
	if s.in.DestKind == ToAddress {
		at = append(at, agent.Point{Node: node, Label: agent.LabelUplink, RouteTo: s.in.Dest.String()})
	}
	s.in.Captures = append(s.in.Captures, agent.CaptureOn(ctx, s.env, s.rec, agent.Retry{
		Probe: ID, What: "a retry of the connection from " + sender.Ref(), At: at, Context: capture.PodContext(s.in.srcPodCIDRs()),
		Filter: capture.FilterSpec{Hosts: []netip.Addr{s.in.Dest}, Ports: []uint16{uint16(s.in.Port)}},
		Do: func(ctx context.Context) error {
			_, err := s.env.Agents.Exec(ctx, sender, req)
			return err
		},
	})...)
}

// srcPodCIDRs are the source node's pod CIDRs.
func (in Input) srcPodCIDRs() []string {
	if in.SrcFacts == nil {
		return nil
	}
	return in.SrcFacts.PodCIDRs
}

// nodeOf reads a node's pod CIDRs and facts through its agent.
func (s *session) nodeOf(ctx context.Context, a probes.Agent) *nodenet.Node {
	facts := agent.GatherFacts(ctx, s.env, []probes.Agent{a})[a.Node]
	n := nodenet.Node{Name: a.Node, Facts: facts, CNI: kube.DiscoverCNI(ctx, s.env.Snap())}
	if kn, err := s.env.Kube.CoreV1().Nodes().Get(ctx, a.Node, metav1.GetOptions{}); err == nil {
		n.PodCIDRs = kube.PodCIDRs(*kn)
	}
	return &n
}
