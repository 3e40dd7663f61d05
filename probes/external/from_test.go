package external

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

// answer is the policy engine's answer for shop/client → 192.168.2.10:80,
// with or without an egress policy that keeps shop's pods in the cluster.
func answer(t *testing.T, deny bool) *policy.Answer {
	t.Helper()
	client := policy.Pod{Namespace: "shop", Name: "client-1", Labels: map[string]string{"app": "client"}, Node: "n1", IPs: []netip.Addr{netip.MustParseAddr("10.244.0.7")}}
	var nps []*networkingv1.NetworkPolicy
	if deny {
		tcp := corev1.ProtocolTCP
		nps = append(nps, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "egress-cluster-only"},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp}}}}}})
	}
	e := policy.Compile([]policy.Pod{client}, []policy.Namespace{{Name: "shop"}}, nps)
	src, _ := e.PodEndpoint("shop/client-1")
	a := e.Ask(src, netip.MustParseAddr("192.168.2.10"), policy.Port{Port: 80, Protocol: corev1.ProtocolTCP})
	return &a
}

func fromProbe(t *testing.T, a *policy.Answer, node, fromPod ops.Outcome) Probe {
	tg, _ := ParseTargets([]string{"192.168.2.10:80"})
	return Probe{Node: "n1", Target: tg[0], Policy: a, FromNode: results(node), FromPod: results(fromPod),
		Pod:    probes.Agent{Kind: agent.AgentStandIn, Node: "n1", Namespace: "shop", Pod: "netsleuth-as-client-1-r1", IP: "10.244.0.9"},
		NodeAg: probes.Agent{Kind: probes.AgentNode, Node: "n1"},
		Source: Source{Ref: "shop/deployment/client", Namespace: "shop", Pod: "client-1"}}
}

// TestAnalyzeFrom: asked from a workload, an egress policy that denies the
// target is the answer, whatever the node would do next; the same without
// the policy is the node's diagnosis as before; a denial the traffic gets
// through is the policy probe's not-enforced finding.
func TestAnalyzeFrom(t *testing.T) {
	cidrs := map[string][]string{"n1": {"10.244.0.0/24"}}
	in := func(p Probe, ipt string) Input {
		return Input{Probes: []Probe{p}, PodCIDRs: cidrs, Facts: map[string]agent.NodeFacts{"n1": facts(t, "1", routesOK, ipt)}}
	}

	// Denied, and SNAT missing on the node too: the policy is what the packets meet first.
	fs := Analyze(in(fromProbe(t, answer(t, true), ops.OK, ops.Timeout), natNone))
	if len(fs) != 1 || fs[0].ID != IDPolicyDenied || fs[0].Status != model.StatusFail {
		t.Fatalf("want only %s, got %+v", IDPolicyDenied, fs)
	}
	f := fs[0]
	if !strings.Contains(f.RootCause, "egress from shop/client-1 is isolated by shop/egress-cluster-only and no egress rule admits 192.168.2.10 on tcp/80") ||
		!strings.Contains(f.Title, "shop/deployment/client (pod shop/client-1) cannot reach 192.168.2.10:80: NetworkPolicy shop/egress-cluster-only denies it") ||
		f.Subject.String() != "Pod/shop/client-1 -> 192.168.2.10:80" || !mentions(f, "192.168.2.10/32") {
		t.Errorf("denial: %s\n%s\n%s\n%+v", f.Title, f.Subject, f.RootCause, f.Fixes)
	}
	if ev := strings.Join(f.Evidence, "\n"); !strings.Contains(ev, "egress: shop/client-1 is isolated by shop/egress-cluster-only") || !strings.Contains(ev, "standin agent shop/netsleuth-as-client-1-r1") {
		t.Errorf("evidence lacks the engine's explanation or the live traffic:\n%s", ev)
	}
	f.Probe = ID
	if err := f.Validate(); err != nil {
		t.Error(err)
	}

	// No policy: the node's missing SNAT, as without --from.
	fs = Analyze(in(fromProbe(t, answer(t, false), ops.OK, ops.Timeout), natNone))
	if fs[0].ID != "node.no-masquerade" || fs[1].ID != IDPodUnreachable || !strings.HasPrefix(fs[1].Title, "shop/deployment/client (pod shop/client-1) cannot reach") {
		t.Errorf("without the policy: %s, %s %q", fs[0].ID, fs[1].ID, fs[1].Title)
	}
	// No policy and the node right: not the policies (they admit it), something else on pod addresses.
	fs = Analyze(in(fromProbe(t, answer(t, false), ops.OK, ops.Timeout), natOK))
	if fs[0].ID != IDPodUnreachable || !strings.Contains(fs[0].RootCause, "the NetworkPolicies admit it") || !mentions(fs[0], "--from shop/deployment/client --to 192.168.2.10:80") {
		t.Errorf("policies admit, node right: %s %s %+v", fs[0].ID, fs[0].RootCause, fs[0].Fixes)
	}
	// Healthy.
	fs = Analyze(in(fromProbe(t, answer(t, false), ops.OK, ops.OK), natOK))
	if len(fs) != 1 || fs[0].ID != IDOK || fs[0].Title != "shop/deployment/client (pod shop/client-1) and its node n1 reach 192.168.2.10:80" {
		t.Errorf("healthy: %+v", fs)
	}
	// Denied, yet it arrives: the CNI does not enforce NetworkPolicy.
	fs = Analyze(in(fromProbe(t, answer(t, true), ops.OK, ops.OK), natOK))
	if len(fs) != 2 || fs[0].ID != "policy.not-enforced" || fs[1].ID != IDOK {
		t.Errorf("denied but arrived: %+v", fs)
	}
}

func TestAgrees(t *testing.T) {
	deny, allow := answer(t, true), answer(t, false)
	for _, c := range []struct {
		a    *policy.Answer
		o    ops.Outcome
		want bool
	}{
		{deny, ops.Timeout, true}, {deny, ops.OK, false}, {allow, ops.OK, true}, {allow, ops.Refused, true},
		{allow, ops.Timeout, false}, {nil, ops.Refused, true}, {nil, ops.Timeout, false},
	} {
		if got := agrees(results(c.o), []*policy.Answer{c.a}); got != c.want {
			t.Errorf("answer %v, outcome %s: agrees %v, want %v", c.a != nil && c.a.Allowed(), c.o, got, c.want)
		}
	}
}
