package dns

import (
	"regexp"
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/clusterdns"
	"github.com/netsleuth/netsleuth/probes/dnsquery"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
)

const ext = "ext.netsleuth.test."

// behaviour of one server in a synthetic measurement.
type behaviour string

const (
	answers  behaviour = "ok"
	silent   behaviour = "timeout"
	servfail behaviour = "servfail"
	noTCP    behaviour = "udp-only"
)

func seriesFor(srv dnsquery.Server, names []string, b behaviour) []dnsquery.Series {
	var out []dnsquery.Series
	for _, n := range names {
		for _, proto := range []string{"udp", "tcp"} {
			s := dnsquery.Series{Server: srv, Name: n, Proto: proto, Sent: 5, Rcodes: map[string]int{}}
			switch {
			case b == silent || b == noTCP && proto == "tcp":
				s.Timeouts, s.LastError = 5, "i/o timeout"
			case b == servfail:
				s.Answered, s.Rcodes["SERVFAIL"], s.P50Ms = 5, 5, 1
			default:
				s.Answered, s.Rcodes["NOERROR"], s.P50Ms, s.P95Ms = 5, 5, 0.5, 0.9
			}
			out = append(out, s)
		}
	}
	return out
}

// measured builds what one node's agent reports when each server behaves as given.
func measured(t clusterdns.Topology, node string, nameserver string, bs map[string]behaviour) LiveNode {
	req := liveRequest(t, "cluster.local", ext)
	ln := LiveNode{Node: node, Agent: "pod agent on " + node}
	for i, op := range req.Ops {
		res := &dnsquery.Result{}
		for _, srv := range op.DNS.Servers {
			b, ok := bs[srv.Addr]
			if !ok {
				b = answers
			}
			res.Series = append(res.Series, seriesFor(srv, op.DNS.Names, b)...)
		}
		if i == 0 {
			res.Search = searchOf(nameserver, bs[nameserver] == answers || bs[nameserver] == "" && nameserver != "10.96.0.99")
			ln.Cluster = res
		} else {
			ln.Upstream = res
		}
	}
	return ln
}

func searchOf(ns string, ok bool) *dnsquery.SearchResult {
	s := &dnsquery.SearchResult{Name: "kubernetes.default", Server: ns, Queries: 4, TotalMs: 2,
		ResolvConf: dnsquery.ResolvConf{Nameservers: []string{ns}, Search: []string{"x.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Ndots: 5},
		Steps:      []dnsquery.Step{{Query: "kubernetes.default.x.svc.cluster.local.", Type: "A", Rcode: "NXDOMAIN", Ms: 0.5}}}
	if ok {
		s.ResolvedAs = "kubernetes.default.svc.cluster.local."
	} else {
		s.Steps[0].Rcode = "timeout"
	}
	return s
}

func TestLiveRequestCoversEveryHop(t *testing.T) {
	top := withNodeLocal(labTopology(), map[string]bool{"n1": true})
	req := liveRequest(top, "cluster.local", ext)
	if err := req.Validate(); err != nil {
		t.Fatalf("the agent would refuse the live request: %v", err)
	}
	hops := map[string]bool{}
	for _, op := range req.Ops {
		if op.Kind != ops.DNS {
			t.Fatalf("op %+v", op)
		}
		for _, s := range op.DNS.Servers {
			hops[s.Hop+" "+s.Addr] = true
		}
	}
	for _, h := range []string{"node-local 169.254.20.10", "kube-dns 10.96.0.10", "coredns-pod 10.244.0.20", "coredns-pod 10.244.1.14", "upstream 10.250.0.53"} {
		if !hops[h] {
			t.Errorf("hop %s not measured: %v", h, hops)
		}
	}
	if req.Ops[0].DNS.Search == nil || req.Ops[1].DNS.Names[0] != ext {
		t.Errorf("search walk or upstream names missing: %+v", req)
	}
}

func TestAnalyzeLive(t *testing.T) {
	nl := withNodeLocal(labTopology(), map[string]bool{"n1": true, "n2": true})
	cases := []struct {
		name      string
		top       clusterdns.Topology
		nodes     []LiveNode
		id        string
		subject   string
		status    model.Status
		rootCause string
	}{
		{"kube-proxy not translating on n2", labTopology(), []LiveNode{
			measured(labTopology(), "n1", "10.96.0.10", nil),
			measured(labTopology(), "n2", "10.96.0.10", map[string]behaviour{"10.96.0.10": silent})},
			IDLiveKubeDNS, "n2", model.StatusFail, "kube-proxy on n2 is not translating"},
		{"CoreDNS pod times out from one node", labTopology(), []LiveNode{
			measured(labTopology(), "n1", "10.96.0.10", map[string]behaviour{"10.244.1.14": silent}),
			measured(labTopology(), "n2", "10.96.0.10", nil)},
			IDLiveCoreDNSPod, "10.244.1.14", model.StatusFail, "answers from other nodes, so the pod network path"},
		{"upstream SERVFAIL", labTopology(), []LiveNode{measured(labTopology(), "n1", "10.96.0.10", map[string]behaviour{"10.250.0.53": servfail})},
			IDLiveUpstream, "10.250.0.53", model.StatusFail, "SERVFAIL"},
		{"NodeLocal cannot reach kube-dns", nl, []LiveNode{measured(nl, "n1", "169.254.20.10", map[string]behaviour{"169.254.20.10": servfail})},
			IDLiveNodeLocal, "n1", model.StatusFail, "cannot reach kube-dns"},
		{"NodeLocal not listening", nl, []LiveNode{measured(nl, "n1", "169.254.20.10", map[string]behaviour{"169.254.20.10": silent})},
			IDLiveNodeLocal, "n1", model.StatusFail, "Nothing answers on 169.254.20.10"},
		{"tcp blocked", labTopology(), []LiveNode{measured(labTopology(), "n1", "10.96.0.10", map[string]behaviour{"10.96.0.10": noTCP})},
			IDLiveKubeDNS, "n1", model.StatusWarn, "tcp/53"},
		{"clusterDNS unused IP", labTopology(), []LiveNode{measured(labTopology(), "n2", "10.96.0.99", nil)},
			IDResolutionFail, "n2", model.StatusFail, "nameserver 10.96.0.99.*neither"},
		{"agent exec failed", labTopology(), []LiveNode{{Node: "n1", Agent: "a", Err: "exec: boom"}},
			IDLiveFailed, "n1", model.StatusError, "boom"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := AnalyzeLive(LiveInput{Topology: c.top, Nodes: c.nodes, ExternalName: ext})
			kubetest.CheckContract(t, got)
			f, ok := kubetest.Find(got, c.id, c.subject)
			if !ok || f.Status != c.status {
				t.Fatalf("want %s %s on %s, got %+v", c.id, c.status, c.subject, got)
			}
			if !regexp.MustCompile(c.rootCause).MatchString(f.RootCause) {
				t.Errorf("root cause %q does not match %q", f.RootCause, c.rootCause)
			}
		})
	}
}

func TestAnalyzeLiveHealthyPassesEveryHop(t *testing.T) {
	nl := withNodeLocal(labTopology(), map[string]bool{"n1": true, "n2": true})
	got := AnalyzeLive(LiveInput{Topology: nl, ExternalName: ext, Nodes: []LiveNode{
		measured(nl, "n1", "169.254.20.10", nil), measured(nl, "n2", "10.96.0.10", nil)}})
	kubetest.CheckContract(t, got)
	for _, f := range got {
		if f.Status != model.StatusPass {
			t.Errorf("%s %s: %s", f.ID, f.Status, f.RootCause)
		}
	}
	for id, n := range map[string]int{IDResolution: 2, IDLiveNodeLocal: 2, IDLiveKubeDNS: 2, IDLiveCoreDNSPod: 2, IDLiveUpstream: 1} {
		if kubetest.Count(got, id, model.StatusPass) != n {
			t.Errorf("want %d pass %s", n, id)
		}
	}
	f, _ := kubetest.Find(got, IDResolution, "n1")
	if !strings.Contains(strings.Join(f.Evidence, "\n"), "ndots:5") {
		t.Errorf("the search-path cost is not shown: %v", f.Evidence)
	}
}

func TestExternalName(t *testing.T) {
	for in, want := range map[string]string{"": DefaultExternalName, "192.168.2.10": DefaultExternalName, "10.0.0.0/8": DefaultExternalName,
		"ext.netsleuth.test": ext, "ext.netsleuth.test:80": ext} {
		var targets []string
		if in != "" {
			targets = []string{in}
		}
		if got := externalName(targets); got != want {
			t.Errorf("externalName(%q) = %q, want %q", in, got, want)
		}
	}
}
