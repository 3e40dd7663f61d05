//go:build e2e

package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
)

// accessNginx sets up the upstream access-nginx walkthrough (seed 004 §13)
// in a fresh namespace: only pods labelled access=true may reach nginx.
func accessNginx(t *testing.T) (ns string, nginx *corev1.Pod) {
	ns = namespace(t, nil)
	nginx = startPod(t, ns, echoPod("nginx", "nsl-node2", map[string]string{"app": "nginx"}))
	startPod(t, ns, echoPod("client", "nsl-node1", map[string]string{"run": "client"}))
	startPod(t, ns, echoPod("trusted", "nsl-node1", map[string]string{"run": "client", "access": "true"}))
	allowIngressFrom(t, ns, "access-nginx", map[string]string{"app": "nginx"}, map[string]string{"access": "true"})
	return ns, nginx
}

// policyLive runs the policy probe with the lab's agent image and checks
// the run left no stand-in in the test namespace.
func policyLive(t *testing.T, ns string, args ...string) (*model.Report, int) {
	t.Helper()
	r, code := check(t, append(append([]string{"--probe", "policy"}, agentFlags...), args...)...)
	pods, err := kube.CoreV1().Pods(ns).List(ctxT(t, 10*time.Second), metav1.ListOptions{LabelSelector: managedSel})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		t.Errorf("the run left pod %s/%s behind", ns, p.Name)
	}
	return r, code
}

// hasEvidence fails t unless some evidence line of f matches re.
func hasEvidence(t *testing.T, f model.Finding, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	for _, e := range f.Evidence {
		if rx.MatchString(e) {
			return
		}
	}
	t.Errorf("%s: no evidence line matches %q:\n%s", f.ID, re, strings.Join(f.Evidence, "\n"))
}

// TestPolicyAccessNginx: the static verdict, the stand-in's real traffic
// and the lab's enforcer agree, both ways.
func TestPolicyAccessNginx(t *testing.T) {
	ns, nginx := accessNginx(t)
	trusted, err := kube.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), "trusted", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target := url(nginx.Status.PodIP, 8080)
	ip := regexp.QuoteMeta(nginx.Status.PodIP)

	r, _ := policyLive(t, ns, "--from", ns+"/client", "--to", ns+"/nginx:8080")
	f := find(t, r, want{id: "policy.verdict", status: "warn", rootCause: `access-nginx`, fix: "access=true"})
	hasEvidence(t, f, `^verified live: TCP connect `+ip+`:8080 from stand-in pod `+ns+`/netsleuth-as-client-\S+ \(10\.244\.\S+\) on node nsl-node1: timeout`)
	hasEvidence(t, f, `app.kubernetes.io/managed-by, netsleuth.dev/run-id, netsleuth.dev/agent \(added by netsleuth; no NetworkPolicy selects on those keys\)`)
	if n := countID(r, "policy.not-enforced", "fail"); n != 0 {
		t.Errorf("%d not-enforced findings with the enforcer running", n)
	}
	eventually(t, 20*time.Second, "the enforcer denies client → nginx too", func() (bool, string) {
		ok, out := reach(t, ns, "client", target)
		return !ok, out
	})

	r, code := policyLive(t, ns, "--from", ns+"/trusted", "--to", ns+"/nginx:8080")
	if code != 0 {
		t.Errorf("exit %d for an allowed question, want 0", code)
	}
	f = find(t, r, want{id: "policy.verdict", status: "pass"})
	hasEvidence(t, f, `^verified live: TCP connect `+ip+`:8080 from stand-in pod `+ns+`/netsleuth-as-trusted-\S+ .*: ok`)
	eventually(t, 20*time.Second, "the enforcer allows trusted → nginx too", func() (bool, string) { return reach(t, ns, "trusted", target) })

	r, _ = policyLive(t, ns, "--from", ns+"/trusted", "--to", ns+"/nginx:8080", "--policy-live", "ephemeral")
	f = find(t, r, want{id: "policy.verdict", status: "pass"})
	hasEvidence(t, f, `^sender: ephemeral container netsleuth-\S+ in `+ns+`/trusted \(`+regexp.QuoteMeta(trusted.Status.PodIP)+`\)`)
	hasEvidence(t, f, `^verified live: TCP connect `+ip+`:8080 from ephemeral container in `+ns+`/trusted .*: ok`)

	r, _ = policyLive(t, ns, "--from", ns+"/client", "--to", ns+"/nginx:8080", "--policy-live", "off")
	hasEvidence(t, find(t, r, want{id: "policy.verdict", status: "warn"}), `^not verified live: --policy-live=off$`)
}

// TestPolicyNotEnforced: with the enforcer stopped, the question policy
// denies gets through, and the probe says the CNI does not enforce policy.
func TestPolicyNotEnforced(t *testing.T) {
	ns, nginx := accessNginx(t)
	withFault(t, "enforcer")
	eventually(t, 20*time.Second, "client reaches nginx with the enforcer stopped", func() (bool, string) {
		return reach(t, ns, "client", url(nginx.Status.PodIP, 8080))
	})
	r, code := policyLive(t, ns, "--from", ns+"/client", "--to", ns+"/nginx:8080")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	v := find(t, r, want{id: "policy.verdict", status: "warn", rootCause: `access-nginx`})
	hasEvidence(t, v, `^live traffic contradicts this verdict: TCP connect .*: ok.*see policy.not-enforced`)
	f := find(t, r, want{id: "policy.not-enforced", status: "fail", subject: "Pod/" + ns + "/nginx",
		rootCause: onProfile(`deny `+ns+`/client -> `+ns+`/nginx on tcp/8080, yet the traffic reached .*does not enforce NetworkPolicy`,
			`deny `+ns+`/client -> `+ns+`/nginx on tcp/8080, yet the traffic got through: the cluster's CNI is Calico, and on node nsl-node1, nsl-node2 felix, its policy agent, is not running and none of its rules are in place.*no enforcer at all`),
		fix: onProfile("kube-network-policies", "kubectl delete pods -A -l k8s-app=calico-node --field-selector spec.nodeName=nsl-node2")})
	hasEvidence(t, f, `^static verdict: denied$`)
	hasEvidence(t, f, `^live: TCP connect .*: ok, same answer on \d+ attempts`)
	if calicoLab() {
		hasEvidence(t, f, `^node agent on nsl-node2: iptables-save → no felix chains`)
		hasEvidence(t, f, `^node agent on nsl-node1: GET http://127\.0\.0\.1:9099/readiness \(felix's health port\) → connection refused$`)
	}
	// Its fix is not applied here: it is "install or repair a CNI that
	// enforces NetworkPolicy", and which one (Calico, Cilium,
	// kube-network-policies) is the cluster owner's choice, not a command
	// netsleuth can know. The lab's stand-in enforcer is restored by unfault.
	t.Logf("fix of %s needs a person's choice of CNI, not applied: %s", f.Key, f.Fixes[0].Description)
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

// TestPolicyEnforcerStale: felix frozen on both nodes (running, its rules
// left as they were, its health port silent) is told apart from no enforcer
// at all: the probe names felix not programming on each node as the root
// cause and does not trust live traffic; and the lab's fault is real: a
// policy created meanwhile is not enforced.
func TestPolicyEnforcerStale(t *testing.T) {
	if !calicoLab() {
		t.Skip("felix's state is Calico's: this suite runs on the lab's bridge profile (NETSLEUTH_E2E_CNI=calico runs it)")
	}
	ns, nginx := accessNginx(t)
	target := url(nginx.Status.PodIP, 8080)
	eventually(t, 20*time.Second, "felix denies client → nginx", func() (bool, string) {
		ok, out := reach(t, ns, "client", target)
		return !ok, out
	})
	withFault(t, "enforcer-stale")
	allowIngressFrom(t, ns, "client-too", map[string]string{"app": "nginx"}, map[string]string{"run": "client"})
	time.Sleep(3 * time.Second)
	if ok, out := reach(t, ns, "client", target); ok {
		t.Fatalf("a frozen felix applied a new policy: client reaches nginx: %s", out)
	}
	r, code := policyLive(t, ns, "--from", ns+"/client", "--to", ns+"/nginx:8080")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, node := range []string{"nsl-node1", "nsl-node2"} {
		f := find(t, r, want{id: "node.felix-not-programming", status: "fail", subject: "Node/" + node,
			rootCause: `Felix \(Calico\) on node ` + node + ` is running but not answering .*while the rules it wrote earlier are still in place`,
			fix:       "kubectl delete pods -A -l k8s-app=calico-node --field-selector spec.nodeName=" + node})
		hasEvidence(t, f, `^node agent on `+node+`: iptables-save → felix's chains are there`)
		hasEvidence(t, f, `^node agent on `+node+`: GET http://127\.0\.0\.1:9[01]99/readiness \(felix's health port\) → timeout$`)
	}
	v := find(t, r, want{id: "policy.verdict", subject: "Pod/" + ns + "/nginx"})
	hasEvidence(t, v, `^not verified live: felix on nsl-node1, nsl-node2 is not programming`)
	if n := countID(r, "policy.not-enforced", "fail"); n != 0 {
		t.Errorf("a stale felix reported as no enforcer: %d policy.not-enforced findings", n)
	}
}
