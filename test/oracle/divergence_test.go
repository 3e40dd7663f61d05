package oracle

import (
	"net/netip"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/probes/policy"
)

// TestKnownDivergenceNotInAbsentKey pins the one difference found between
// the engines: a NotIn requirement on a key the pod lacks. apimachinery
// (what the API server and every enforcer use) says it matches; cyclonus
// v0.5.6 says it does not. We follow apimachinery; the generators give every
// pod the keys they select on so that the differential tests stay exact.
func TestKnownDivergenceNotInAbsentKey(t *testing.T) {
	w := World{
		Namespaces: []policy.Namespace{{Name: "x", Labels: map[string]string{"kubernetes.io/metadata.name": "x"}}},
		Pods: []policy.Pod{
			{Namespace: "x", Name: "a", Labels: map[string]string{"pod": "a"}, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
			{Namespace: "x", Name: "b", Labels: map[string]string{"pod": "b"}, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}},
		},
		Policies: []*networkingv1.NetworkPolicy{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "deny-not-search"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"search"}},
			}}},
		}},
	}
	q := BenchPorts[0]
	ours := policy.Compile(w.Pods, w.Namespaces, w.Policies).Matrix([]policy.Port{q}, nil).Allowed(0, 0, 1)
	theirs := NewCyclonus(w).Allowed(0, 1, q)
	if ours || !theirs {
		t.Fatalf("expected ours=denied (x/b is selected: it has no app label) and cyclonus=allowed; got ours=%v cyclonus=%v", ours, theirs)
	}
}
