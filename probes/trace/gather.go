package trace

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/clusterdns"
	"github.com/netsleuth/netsleuth/probes/dnsquery"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/policy"
	"github.com/netsleuth/netsleuth/probes/servicediag"
)

type searchResult = dnsquery.SearchResult

// dnsquerySpec resolves name through the agent's resolv.conf (its search
// path and ndots), A records only.
func dnsquerySpec(name string) dnsquery.Spec {
	return dnsquery.Spec{Count: 1, TimeoutMs: 2000, Search: &dnsquery.SearchSpec{Name: name, Types: []string{"A"}}}
}

func searchEvidence(sr *searchResult) []string {
	rc := sr.ResolvConf
	ev := []string{fmt.Sprintf("resolv.conf: nameserver %s, search %s, ndots:%d", strings.Join(rc.Nameservers, " "), strings.Join(rc.Search, " "), rc.Ndots)}
	var steps []string
	for _, st := range sr.Steps {
		steps = append(steps, fmt.Sprintf("%s %s → %s", strings.TrimSuffix(st.Query, "."), st.Type, st.Rcode))
	}
	ev = append(ev, "search walk: "+strings.Join(steps, "; "))
	if sr.Address != "" {
		ev = append(ev, fmt.Sprintf("answer: %s A %s", strings.TrimSuffix(sr.ResolvedAs, "."), sr.Address))
	}
	return ev
}

// dnsCauses are the shared findings that can explain a failed resolution,
// the most specific first: a policy blocking the source namespace's DNS, the
// source node kubelet's clusterDNS, the kube-dns Service's endpoints.
func dnsCauses(ctx context.Context, env *probes.Env, rec probes.Recorder, p *Plan) []model.Finding {
	var out []model.Finding
	if p.Source != nil {
		if e, err := policy.Load(ctx, env, rec); err == nil {
			for _, f := range e.Lint(p.Source.Namespace) {
				if f.ID == "policy.blocks-dns" {
					out = append(out, f)
				}
			}
		}
	}
	rec.Stage("reading the cluster DNS and node " + p.Node + "'s kubelet clusterDNS")
	t, err := clusterdns.Discover(ctx, env.Snap())
	if err == nil {
		if cfg, err := env.Snap().KubeletConfig(ctx, p.Node); err == nil {
			out = append(out, clusterdns.KubeletDNS(p.Node, cfg.ClusterDNS, t))
		}
	}
	if in, _, err := servicediag.Load(ctx, env.Snap(), clusterdns.SystemNS, time.Now()); err == nil {
		in.Services = only(in.Services, clusterdns.ServiceName)
		out = append(out, servicediag.Analyze(in)...)
	}
	return out
}

func only(svcs []corev1.Service, name string) []corev1.Service {
	var out []corev1.Service
	for _, s := range svcs {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// service fills in the destination Service: its shared diagnosis, the
// port asked for, its ready endpoints on that port, tried directly.
func (s *session) service(ctx context.Context) {
	svc := s.plan.Service
	s.in.Dest, _ = netip.ParseAddr(svc.Spec.ClusterIP)
	s.in.ServiceRef.Namespace, s.in.ServiceRef.Name, s.in.ServiceRef.ClusterIP = svc.Namespace, svc.Name, svc.Spec.ClusterIP
	if in, _, err := servicediag.Load(ctx, s.env.Snap(), svc.Namespace, time.Now()); err == nil {
		in.Services = only(in.Services, svc.Name)
		s.in.ServiceFinding = servicediag.Analyze(in)
	}
	s.in.ServicePorts = servicediag.PortList(svc)
	sp, ok := servicediag.PortFor(svc, s.in.Port, s.in.Proto)
	if !ok {
		return
	}
	s.in.PortMatched, s.in.TargetPort = true, servicediag.TargetPort(sp)
	s.in.ServiceRef.PortName, s.in.ServiceRef.Port, s.in.ServiceRef.NodePort = sp.Name, int(sp.Port), int(sp.NodePort)
	s.in.Backends, _ = servicediag.ListEndpoints(ctx, s.env.Kube, svc.Namespace, svc.Name, sp.Name, 3)
	if len(s.in.Backends) > 0 {
		s.in.DestNode = s.in.Backends[0].Node
	}
	var req ops.Request
	for _, b := range s.in.Backends {
		req.Ops = append(req.Ops, s.connectOp(b.IP, b.Port))
	}
	if len(req.Ops) == 0 {
		return
	}
	s.rec.Stage(fmt.Sprintf("connecting to %d endpoint(s) of %s directly", len(req.Ops), svc.Namespace+"/"+svc.Name))
	if resp, err := s.env.Agents.Exec(ctx, s.sender, req); err == nil {
		s.in.Direct = resp.Results
	}
}

// rbacGather is what the Service's endpoints are read with.
var rbacGather = servicediag.RBACEndpoints

// connectOp is the live attempt at ip:port with the trace's protocol.
func (s *session) connectOp(ip string, port int) ops.Op {
	if s.in.Proto == "udp" {
		return ops.Op{Kind: ops.UDP, Target: ip, Port: port, Count: 3, TimeoutMs: 1000}
	}
	return ops.Op{Kind: ops.TCP, Target: ip, Port: port, TimeoutMs: 2000}
}

// policy asks the policy engine about the source → destination (the first
// endpoint of a Service: policies apply after kube-proxy's DNAT).
func (s *session) policy(ctx context.Context) {
	e, err := policy.Load(ctx, s.env, s.rec)
	if err != nil {
		s.in.Notes = append(s.in.Notes, "NetworkPolicies were not evaluated: "+err.Error())
		return
	}
	var src policy.Endpoint
	if s.plan.Source != nil {
		var ok bool
		if src, ok = e.PodEndpoint(s.plan.Source.Namespace + "/" + s.plan.Source.Name); !ok {
			return
		}
	} else {
		src = e.IPEndpoint(s.in.SrcIP)
	}
	dst := s.in.Dest
	if s.in.DestKind == ToService {
		if len(s.in.Backends) == 0 {
			return
		}
		dst, _ = netip.ParseAddr(s.in.Backends[0].IP)
	}
	port := s.in.Port
	if s.in.DestKind == ToService && len(s.in.Backends) > 0 {
		port = s.in.Backends[0].Port
	}
	a := e.Ask(src, dst, policy.Port{Port: int32(port), Protocol: corev1.Protocol(strings.ToUpper(s.in.Proto))})
	s.in.Policy, s.in.PolicyAllowed = &a.Finding, a.Allowed()
}

// nodes reads the source node's facts (and the destination node's, for a
// pod), and for an off-cluster address lets the node itself try it.
func (s *session) nodes(ctx context.Context) {
	s.rec.Stage("reading node " + s.node.Node + "'s routes, forwarding, NAT and kube-proxy rules")
	s.in.SrcFacts = s.nodeOf(ctx, s.node)
	s.in.Proxy = kube.DiscoverKubeProxy(ctx, s.env.Snap())
	if s.in.DestKind == ToAddress {
		req := ops.Request{Ops: []ops.Op{s.connectOp(s.in.Dest.String(), s.in.Port)}}
		if resp, err := s.env.Agents.Exec(ctx, s.node, req); err == nil {
			s.in.NodeToTarget = resp.Results
		}
		return
	}
	if s.in.DestNode == "" {
		return
	}
	if s.in.DestNode == s.node.Node {
		s.in.DstFacts = s.in.SrcFacts
		return
	}
	as := s.env.Agents.Start(ctx, probes.AgentNode, []string{s.in.DestNode})
	if as[0].Err == nil {
		s.in.DstFacts = s.nodeOf(ctx, as[0])
	}
}

// live sends the connection from the sender, and captures a retry of it
// when it does not arrive.
func (s *session) live(ctx context.Context) {
	req := ops.Request{Ops: []ops.Op{s.connectOp(s.in.Dest.String(), s.in.Port)}}
	s.rec.Stage(fmt.Sprintf("connecting to %s:%d/%s from %s", s.in.Dest, s.in.Port, s.in.Proto, s.sender.Ref()))
	for attempt := 0; attempt < 2; attempt++ {
		resp, err := s.env.Agents.Exec(ctx, s.sender, req)
		if err != nil {
			s.in.Notes = append(s.in.Notes, "the live connection could not be sent: "+err.Error())
			return
		}
		s.in.Live = resp.Results
		if ops.Arrived(s.in.Live) {
			return
		}
		time.Sleep(time.Second) // a new stand-in's rules may lag a moment
	}
	s.captureLive(ctx, req)
}
