//go:build e2e

package e2e

import (
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPolicyAccessNginx is the upstream access-nginx walkthrough (seed 004
// §13): only pods labelled access=true may reach nginx. The static verdict
// must match what the lab's enforcer really does.
func TestPolicyAccessNginx(t *testing.T) {
	ns := namespace(t, nil)
	nginx := startPod(t, ns, echoPod("nginx", "nsl-node2", map[string]string{"app": "nginx"}))
	startPod(t, ns, echoPod("client", "nsl-node1", map[string]string{"run": "client"}))
	startPod(t, ns, echoPod("trusted", "nsl-node1", map[string]string{"run": "client", "access": "true"}))
	_, err := kube.NetworkingV1().NetworkPolicies(ns).Create(ctxT(t, 10*time.Second), &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "access-nginx"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "nginx"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"access": "true"}}}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target := url(nginx.Status.PodIP, 8080)

	r, _ := check(t, "--probe", "policy", "--from", ns+"/client", "--to", ns+"/nginx:8080")
	find(t, r, want{id: "policy.verdict", status: "warn", rootCause: `access-nginx`, fix: "access=true"})
	eventually(t, 20*time.Second, "the enforcer denies client → nginx too", func() (bool, string) {
		ok, out := reach(t, ns, "client", target)
		return !ok, out
	})

	r, code := check(t, "--probe", "policy", "--from", ns+"/trusted", "--to", ns+"/nginx:8080")
	if code != 0 {
		t.Errorf("exit %d for an allowed question, want 0", code)
	}
	find(t, r, want{id: "policy.verdict", status: "pass"})
	eventually(t, 20*time.Second, "the enforcer allows trusted → nginx too", func() (bool, string) { return reach(t, ns, "trusted", target) })
}

// TestPolicyBlocksDNS: an egress policy without a DNS rule is named by the lint.
func TestPolicyBlocksDNS(t *testing.T) {
	ns := namespace(t, nil)
	startPod(t, ns, echoPod("web", "nsl-node1", map[string]string{"app": "web"}))
	_, err := kube.NetworkingV1().NetworkPolicies(ns).Create(ctxT(t, 10*time.Second), &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "egress-web-only"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, code := check(t, "--probe", "policy", "-n", ns)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	find(t, r, want{id: "policy.blocks-dns", status: "fail", rootCause: `egress-web-only`, fix: "53"})
}
