package dns

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/dnsquery"
)

// DefaultExternalName is the external-looking name the live half resolves
// when no --target names one.
const DefaultExternalName = "kubernetes.io."

// Live measurement sizes: per server, name and protocol.
const (
	liveCount     = 5
	liveTimeoutMs = 1000
	searchName    = "kubernetes.default"
)

// LiveNode is what the agent on one node measured.
type LiveNode struct {
	Node  string
	Agent string // the agent's Ref, for evidence
	// Cluster holds the in-cluster hops (NodeLocal, kube-dns, CoreDNS pods)
	// and the search-path walk; Upstream the upstream servers.
	Cluster, Upstream *dnsquery.Result
	Err               string
}

// externalName picks the first --target that is a DNS name.
func externalName(targets []string) string {
	for _, t := range targets {
		host := t
		if h, _, err := net.SplitHostPort(t); err == nil {
			host = h
		}
		if _, err := netip.ParseAddr(host); err == nil || strings.Contains(host, "/") || !strings.Contains(host, ".") {
			continue
		}
		return strings.TrimSuffix(host, ".") + "."
	}
	return DefaultExternalName
}

// clusterServers are the in-cluster hops every node's agent queries.
func clusterServers(t Topology) []dnsquery.Server {
	var out []dnsquery.Server
	for _, a := range localAddresses(t) {
		out = append(out, dnsquery.Server{Hop: HopNodeLocal, Addr: a, Label: "NodeLocal DNS cache"})
	}
	for _, ip := range t.ServiceIPs() {
		out = append(out, dnsquery.Server{Hop: HopKubeDNS, Addr: ip, Label: "Service kube-system/kube-dns"})
	}
	for _, p := range t.Pods {
		if p.IP != "" {
			out = append(out, dnsquery.Server{Hop: HopCoreDNSPod, Addr: p.IP, Label: "pod kube-system/" + p.Name + " on " + p.Node})
		}
	}
	return out
}

// upstreamServers are the Corefile's forward targets that are addresses.
func upstreamServers(t Topology) []dnsquery.Server {
	var out []dnsquery.Server
	if t.Corefile == nil {
		return nil
	}
	for _, fw := range t.Corefile.Forwards() {
		if fw.From != "." {
			continue
		}
		for _, to := range fw.To {
			addr := strings.TrimPrefix(strings.TrimPrefix(to, "dns://"), "udp://")
			host := addr
			if h, _, err := net.SplitHostPort(addr); err == nil {
				host = h
			}
			if _, err := netip.ParseAddr(host); err == nil {
				out = append(out, dnsquery.Server{Hop: HopUpstream, Addr: addr, Label: "CoreDNS upstream"})
			}
		}
	}
	return out
}

// liveRequest is the request each node's agent runs.
func liveRequest(t Topology, domain, external string) ops.Request {
	names := []string{"kubernetes.default.svc." + domain + ".", ServiceName + "." + SystemNS + ".svc." + domain + ".", external}
	cluster := &dnsquery.Spec{Servers: clusterServers(t), Names: names, Count: liveCount, TimeoutMs: liveTimeoutMs,
		Search: &dnsquery.SearchSpec{Name: searchName}}
	req := ops.Request{Ops: []ops.Op{{Kind: ops.DNS, DNS: cluster}}}
	if up := upstreamServers(t); len(up) > 0 {
		req.Ops = append(req.Ops, ops.Op{Kind: ops.DNS, DNS: &dnsquery.Spec{Servers: up, Names: []string{external},
			Count: liveCount, TimeoutMs: liveTimeoutMs}})
	}
	return req
}

// runLive measures DNS from a pod-network agent on every node and records
// the hop-by-hop verdicts.
func runLive(ctx context.Context, env *probes.Env, rec probes.Recorder, in Input) error {
	if env.Agents == nil {
		rec.Finding(model.Finding{Probe: ID, ID: IDLiveSkipped, Status: model.StatusSkip, Subject: &model.Subject{Kind: "Cluster", Name: "dns"},
			Title: "live DNS measurement not run: this run has no in-cluster agents", Evidence: []string{agent.ErrNoAgents.Error()}})
		return nil
	}
	nodes := make([]string, 0, len(in.Nodes))
	for _, n := range in.Nodes {
		nodes = append(nodes, n.Name)
	}
	ok, failed, err := agent.StartPods(ctx, env, rec, probes.AgentPod, nodes)
	if err != nil {
		return err
	}
	for _, a := range failed {
		rec.Finding(agent.NotStartedFinding(ID, a))
	}
	domain := "cluster.local"
	if t := in.Topology; t.Corefile != nil && len(t.Corefile.KubernetesZones()) > 0 {
		domain = t.Corefile.KubernetesZones()[0]
	}
	external := externalName(env.Options.Targets)
	req := liveRequest(in.Topology, domain, external)
	rec.Stage("querying each DNS hop from the agents (UDP and TCP)")
	live := make([]LiveNode, len(ok))
	var wg sync.WaitGroup
	for i, a := range ok {
		wg.Go(func() { live[i] = measure(ctx, env, a, req) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, f := range AnalyzeLive(LiveInput{Topology: in.Topology, Nodes: live, ExternalName: external}) {
		rec.Finding(f)
	}
	return nil
}

func measure(ctx context.Context, env *probes.Env, a probes.Agent, req ops.Request) LiveNode {
	ln := LiveNode{Node: a.Node, Agent: a.Ref()}
	resp, err := env.Agents.Exec(ctx, a, req)
	if err != nil {
		ln.Err = err.Error()
		return ln
	}
	for i, r := range resp.Results {
		if r.Outcome != ops.OK || r.DNS == nil {
			ln.Err = strings.TrimSpace(ln.Err + " " + r.Error)
			continue
		}
		if i == 0 {
			ln.Cluster = r.DNS
		} else {
			ln.Upstream = r.DNS
		}
	}
	return ln
}
