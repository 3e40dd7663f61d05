package dns

import (
	"fmt"
	"sort"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/clusterdns"
	"github.com/netsleuth/netsleuth/probes/dnsquery"
)

// Hops the live half measures.
const (
	HopNodeLocal  = "node-local"
	HopKubeDNS    = "kube-dns"
	HopCoreDNSPod = "coredns-pod"
	HopUpstream   = "upstream"
)

// Finding IDs of the live half.
const (
	IDLiveSkipped    = "dns.live-skipped"
	IDLiveFailed     = "dns.live-failed"
	IDResolution     = "dns.live-resolution"
	IDResolutionFail = "dns.live-resolution-failed"
	IDLiveNodeLocal  = "dns.live-node-local"
	IDLiveKubeDNS    = "dns.live-kube-dns"
	IDLiveCoreDNSPod = "dns.live-coredns-pod"
	IDLiveUpstream   = "dns.live-upstream"
)

// LiveInput is everything AnalyzeLive reasons about.
type LiveInput struct {
	Topology clusterdns.Topology
	Nodes    []LiveNode
	// ExternalName is the name answered by upstreams; NXDOMAIN is an
	// acceptable answer for it, not for cluster names.
	ExternalName string
	// Causes are the configuration findings that explain live failures.
	Causes Causes
}

// Causes are the failing configuration findings live failures are symptoms
// of: the kube-dns Service's endpoints (the shared Service diagnosis), each
// node's kubelet clusterDNS and NodeLocal DNS cache.
type Causes struct {
	Service   *model.Finding
	Kubelet   map[string]model.Finding // by node
	NodeLocal map[string]model.Finding // by node
}

// CausesFrom picks the failing configuration findings out of the
// configuration half's findings.
func CausesFrom(fs []model.Finding) Causes {
	c := Causes{Kubelet: map[string]model.Finding{}, NodeLocal: map[string]model.Finding{}}
	for _, f := range fs {
		if !f.Status.Failing() || f.Subject == nil || f.CausedBy != "" {
			continue
		}
		if f.Key == "" {
			f = f.WithKey("")
		}
		switch {
		case f.Subject.Kind == "Service" && f.Subject.Name == clusterdns.ServiceName && c.Service == nil:
			c.Service = &f
		case f.ID == clusterdns.IDKubeletDNS:
			c.Kubelet[f.Subject.Name] = f
		case f.ID == IDNodeLocalMissing:
			c.NodeLocal[f.Subject.Name] = f
		}
	}
	return c
}

// because returns f as a symptom of cause, preceded by cause, or f alone.
func because(f model.Finding, cause *model.Finding) []model.Finding {
	if cause == nil {
		return []model.Finding{f}
	}
	return []model.Finding{*cause, f.Symptom(*cause)}
}

// hopVerdict sums up the series of one server as seen from one node.
type hopVerdict struct {
	server           dnsquery.Server
	udpOK, tcpOK     bool
	dead             bool // no query got any answer
	problems, timing []string
}

func (v hopVerdict) ok() bool { return v.udpOK && v.tcpOK }

func acceptable(s dnsquery.Series, external string) bool {
	good := s.Rcodes["NOERROR"]
	if s.Name == external {
		good += s.Rcodes["NXDOMAIN"]
	}
	return s.Sent > 0 && s.Answered == s.Sent && good == s.Sent
}

func problem(s dnsquery.Series) string {
	what := fmt.Sprintf("%s %s", s.Proto, strings.TrimSuffix(s.Name, "."))
	switch {
	case s.Timeouts == s.Sent:
		return fmt.Sprintf("%s: timed out %d/%d", what, s.Timeouts, s.Sent)
	case s.Answered == 0:
		return fmt.Sprintf("%s: %s", what, s.LastError)
	}
	var codes []string
	for c, n := range s.Rcodes {
		codes = append(codes, fmt.Sprintf("%s %d/%d", c, n, s.Sent))
	}
	sort.Strings(codes)
	if lost := s.Sent - s.Answered; lost > 0 {
		codes = append(codes, fmt.Sprintf("no answer %d/%d", lost, s.Sent))
	}
	return what + ": " + strings.Join(codes, ", ")
}

// judge groups a result's series by server and judges each server.
func judge(res *dnsquery.Result, external string) []hopVerdict {
	if res == nil {
		return nil
	}
	idx := map[string]int{}
	var out []hopVerdict
	for _, s := range res.Series {
		i, seen := idx[s.Server.Addr]
		if !seen {
			i = len(out)
			idx[s.Server.Addr] = i
			out = append(out, hopVerdict{server: s.Server, udpOK: true, tcpOK: true, dead: true})
		}
		v := &out[i]
		if s.Answered > 0 {
			v.dead = false
			v.timing = append(v.timing, fmt.Sprintf("%s %s: %d/%d answered, p50 %.2f ms, p95 %.2f ms", s.Proto, strings.TrimSuffix(s.Name, "."), s.Answered, s.Sent, s.P50Ms, s.P95Ms))
		}
		if acceptable(s, external) {
			continue
		}
		v.problems = append(v.problems, problem(s))
		if s.Proto == "udp" {
			v.udpOK = false
		} else {
			v.tcpOK = false
		}
	}
	return out
}

func dig(v hopVerdict, name string) string {
	return fmt.Sprintf("dig @%s %s   # +tcp for TCP; from a pod on the node", v.server.Addr, strings.TrimSuffix(name, "."))
}

// AnalyzeLive turns the agents' measurements into one verdict per hop and
// node, naming the broken hop.
func AnalyzeLive(in LiveInput) []model.Finding {
	var out []model.Finding
	pods := map[string][]string{} // CoreDNS pod addr → problems per node
	podOK := map[string][]string{}
	ups := map[string][]string{}
	upOK := map[string][]string{}
	for _, n := range in.Nodes {
		if n.Err != "" && n.Cluster == nil {
			out = append(out, liveFailed(n))
			continue
		}
		hops := judge(n.Cluster, in.ExternalName)
		hopFindings, roots := nodeHopFindings(in, n, hops)
		out = append(out, resolutionFinding(in, n, hops, roots)...)
		out = append(out, hopFindings...)
		for _, v := range hops {
			if v.server.Hop == HopCoreDNSPod {
				collect(pods, podOK, v, n.Node)
			}
		}
		for _, v := range judge(n.Upstream, in.ExternalName) {
			collect(ups, upOK, v, n.Node)
		}
	}
	out = append(out, aggregated(in, IDLiveCoreDNSPod, HopCoreDNSPod, pods, podOK)...)
	out = append(out, aggregated(in, IDLiveUpstream, HopUpstream, ups, upOK)...)
	return out
}

func collect(bad, good map[string][]string, v hopVerdict, node string) {
	key := v.server.Addr + "|" + v.server.Label
	if v.ok() {
		good[key] = append(good[key], fmt.Sprintf("from %s: %s", node, strings.Join(v.timing, "; ")))
		return
	}
	bad[key] = append(bad[key], fmt.Sprintf("from %s: %s", node, strings.Join(v.problems, "; ")))
	if _, ok := good[key]; !ok {
		good[key] = nil
	}
}

func liveFailed(n LiveNode) model.Finding {
	return model.Finding{ID: IDLiveFailed, Status: model.StatusError, Subject: nodeSubject(n.Node),
		Title:      fmt.Sprintf("node %s: DNS could not be measured from the agent", n.Node),
		RootCause:  fmt.Sprintf("Running the DNS measurement in %s failed (%s), so the hops from node %s were not measured.", n.Agent, n.Err, n.Node),
		Evidence:   []string{n.Err},
		References: []string{refDebug},
		Fixes: []model.Fix{{Description: "Check that the agent pod runs and can be exec'd into, then run the probe again.",
			Commands: []string{"netsleuth check --probe dns", "kubectl get pods -A -l app.kubernetes.io/name=netsleuth -o wide"}}},
	}
}
