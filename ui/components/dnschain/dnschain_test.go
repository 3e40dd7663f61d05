package dnschain

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
	"github.com/netsleuth/netsleuth/ui/theme"
)

func dns(fs []model.Finding) []model.Finding {
	var out []model.Finding
	for _, f := range fs {
		if f.Probe == "dns" {
			out = append(out, f)
		}
	}
	return out
}

// TestRenderCoreDNSZero: with CoreDNS at 0 replicas the kube-dns hop
// fails from both nodes and the upstream still answers.
func TestRenderCoreDNSZero(t *testing.T) {
	cs := Parse(dns(uitest.Findings(t, "coredns-zero")))
	if len(cs) != 2 || cs[0].Node != "nsl-node1" {
		t.Fatalf("chains = %+v", cs)
	}
	var kd Hop
	for _, h := range cs[0].Hops {
		if h.Name == "kube-dns" {
			kd = h
		}
	}
	if kd.Status != model.StatusFail {
		t.Errorf("kube-dns hop = %+v, want fail", kd)
	}
	golden.RequireEqual(t, strings.Join(Render(cs, theme.New(false, true), 100), "\n"))
}

func TestRenderHealthy(t *testing.T) {
	cs := Parse(dns(uitest.Findings(t, "healthy")))
	golden.RequireEqual(t, strings.Join(Render(cs, theme.New(true, false), 80), "\n"))
}

// TestSharedHopPerNode: a CoreDNS pod failing from one node only passes on
// the other node's chain.
func TestSharedHopPerNode(t *testing.T) {
	fs := []model.Finding{
		{ID: idKubeDNS, Status: model.StatusPass, Subject: &model.Subject{Kind: "Node", Name: "a"}, Title: "node a: kube-dns answers"},
		{ID: idKubeDNS, Status: model.StatusPass, Subject: &model.Subject{Kind: "Node", Name: "b"}, Title: "node b: kube-dns answers"},
		{ID: idCoreDNSPod, Status: model.StatusFail, Subject: &model.Subject{Kind: "DNSServer", Name: "10.244.0.2"},
			Title:    "CoreDNS pod 10.244.0.2 fails from some nodes",
			Evidence: []string{"from b: udp kubernetes.default.svc.cluster.local: timed out 5/5", "from a: udp kubernetes.default.svc.cluster.local: 5/5 answered, p50 0.40 ms, p95 0.90 ms"}},
	}
	cs := Parse(fs)
	if got := cs[0].Hops[1]; got.Status != model.StatusPass || got.Latency != "p50 0.40 ms" {
		t.Errorf("from a: %+v, want pass with its latency", got)
	}
	if got := cs[1].Hops[1]; got.Status != model.StatusFail || !strings.Contains(got.Note, "timed out") {
		t.Errorf("from b: %+v, want fail with the problem", got)
	}
}
