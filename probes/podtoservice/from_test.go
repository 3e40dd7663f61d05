package podtoservice

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/policy"
)

// answers is the policy engine's answer for shop/client to each backend of
// the test Service (ns1/web on 10.244.0.5 and 10.244.1.5, port 8766), with
// or without a default-deny egress policy in shop.
func policyAnswers(t *testing.T, deny bool) []*policy.Answer {
	t.Helper()
	ip := netip.MustParseAddr
	pods := []policy.Pod{
		{Namespace: "shop", Name: "client", Labels: map[string]string{"app": "client"}, Node: "n1", IPs: []netip.Addr{ip("10.244.0.7")}},
		{Namespace: "ns1", Name: "web-1", Labels: map[string]string{"app": "web"}, Node: "n1", IPs: []netip.Addr{ip("10.244.0.5")}},
		{Namespace: "ns1", Name: "web-2", Labels: map[string]string{"app": "web"}, Node: "n2", IPs: []netip.Addr{ip("10.244.1.5")}},
	}
	var nps []*networkingv1.NetworkPolicy
	if deny {
		nps = append(nps, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "deny-egress"},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}}})
	}
	e := policy.Compile(pods, []policy.Namespace{{Name: "shop"}, {Name: "ns1"}}, nps)
	src, _ := e.PodEndpoint("shop/client")
	var out []*policy.Answer
	for _, b := range []string{"10.244.0.5", "10.244.1.5"} {
		a := e.Ask(src, ip(b), policy.Port{Port: 8766, Protocol: corev1.ProtocolTCP})
		out = append(out, &a)
	}
	return out
}

// fromInput is the test Service tried from one stand-in for shop/client on n1.
func fromInput(t *testing.T, deny bool, o ops.Outcome) Input {
	w := world{clusterFrom: map[string]ops.Outcome{"n1": o}, directFrom: map[string]ops.Outcome{"n1": o}, nodePortOn: map[string]ops.Outcome{"n1": o, "n2": o}}
	in := w.input(nil, Proxy{})
	in.Sources = in.Sources[:1]
	in.Sources[0].Agent = probes.Agent{Kind: agent.AgentStandIn, Node: "n1", Namespace: "shop", Pod: "netsleuth-as-client-r1", IP: "10.244.0.9"}
	in.From, in.Policy = "shop/client", policyAnswers(t, deny)
	return in
}

// TestAnalyzeFrom: asked from a workload whose egress is denied, the
// Service is blocked by that policy, not by the pod network or kube-proxy;
// without the policy the same silence is the pod network's; a denial the
// traffic gets through is the policy probe's not-enforced finding.
func TestAnalyzeFrom(t *testing.T) {
	in := fromInput(t, true, ops.Timeout)
	got := Analyze(in)
	if len(got) != 1 || got[0].ID != IDPolicyDenied || got[0].Subject.String() != "Service/ns1/web" {
		t.Fatalf("want only %s for Service/ns1/web, got %+v", IDPolicyDenied, got)
	}
	f := got[0]
	if f.Title != "shop/client cannot reach Service ns1/web: NetworkPolicy shop/deny-egress denies it" ||
		!strings.Contains(f.RootCause, "egress from shop/client is isolated by shop/deny-egress") || len(f.Fixes) == 0 {
		t.Errorf("denial: %s\n%s\n%+v", f.Title, f.RootCause, f.Fixes)
	}
	if ev := strings.Join(f.Evidence, "\n"); !strings.Contains(ev, "standin agent shop/netsleuth-as-client-r1") || !strings.Contains(ev, "egress: shop/client is isolated by shop/deny-egress") {
		t.Errorf("evidence:\n%s", ev)
	}
	f.Probe = ID
	if err := f.Validate(); err != nil {
		t.Error(err)
	}
	if n := FailingNodes(in); len(n) != 0 {
		t.Errorf("a policy denial needs no node's rules read, got %v", n)
	}

	got = Analyze(fromInput(t, false, ops.Timeout))
	if len(got) != 1 || got[0].ID != IDPodNetwork || !strings.HasPrefix(got[0].RootCause, "shop/client cannot reach any endpoint of ns1/web even by pod IP") {
		t.Errorf("no policy: %+v", got)
	}

	got = Analyze(fromInput(t, true, ops.OK))
	var ids []string
	for _, f := range got {
		ids = append(ids, f.ID)
	}
	if strings.Join(ids, ",") != "policy.not-enforced,pod-to-service.ok,pod-to-service.ok" || got[1].Title != "Service ns1/web works from shop/client on node n1 (ClusterIP 10.96.5.5:80 and NodePort 30080)" {
		t.Errorf("denied yet arrived: %v %q", ids, got[1].Title)
	}
	if got[0].Status != model.StatusFail {
		t.Errorf("not enforced: %s", got[0].Status)
	}
}

func TestSettled(t *testing.T) {
	deny := fromInput(t, true, ops.Timeout)
	if !deny.settled(resultsOf(ops.Timeout, 5)) || deny.settled(resultsOf(ops.OK, 5)) {
		t.Error("denied: silence is settled, an answer is not (the enforcer may lag a new stand-in)")
	}
	allow := fromInput(t, false, ops.Timeout)
	if allow.settled(resultsOf(ops.Timeout, 5)) || !allow.settled(resultsOf(ops.OK, 5)) {
		t.Error("allowed: an answer is settled, silence is not")
	}
}

func resultsOf(o ops.Outcome, n int) []ops.Result {
	out := make([]ops.Result, n)
	for i := range out {
		out[i] = res("10.0.0.1", 80, o)
	}
	return out
}
