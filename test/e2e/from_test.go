//go:build e2e

package e2e

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
)

// fromPods sets up the --from fixtures: "client" on node 1, whose egress
// the test restricts, "free" beside it with no policy, and "c" on node 2
// behind Service c (80 → 8080).
func fromPods(t *testing.T) (ns string, c *corev1.Pod) {
	t.Helper()
	ns = namespace(t, nil)
	startPod(t, ns, echoPod("client", "nsl-node1", map[string]string{"app": "client"}))
	startPod(t, ns, echoPod("free", "nsl-node1", map[string]string{"app": "free"}))
	c = startPod(t, ns, echoPod("c", "nsl-node2", map[string]string{"app": "c"}))
	echoService(t, ns, "c")
	return ns, c
}

// egressPolicy isolates client's egress: to rules (none: deny all egress).
func egressPolicy(t *testing.T, ns, name string, to ...networkingv1.NetworkPolicyEgressRule) {
	t.Helper()
	_, err := kube.NetworkingV1().NetworkPolicies(ns).Create(ctxT(t, 10*time.Second), &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}, Egress: to}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// clusterOnly admits TCP to 10.0.0.0/8 (pods and Services), so the lab's
// external host 192.168.2.10 is denied.
func clusterOnly() networkingv1.NetworkPolicyEgressRule {
	tcp := corev1.ProtocolTCP
	return networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp}}}
}

// samePods admits TCP to the pods of the namespace only, so the lab's
// external host 192.168.2.10 is denied (by pod selection, which the engine
// and every enforcer read alike, unlike an ipBlock holding pod addresses).
func samePods() networkingv1.NetworkPolicyEgressRule {
	tcp := corev1.ProtocolTCP
	return networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp}}}
}

// fromRun runs check --probe probe with the lab's agent image and checks
// the run left nothing behind, its stand-ins in ns included.
func fromRun(t *testing.T, ns, probe string, args ...string) (*model.Report, int) {
	t.Helper()
	r, code := check(t, append(append([]string{"--probe", probe}, agentFlags...), args...)...)
	pods, err := kube.CoreV1().Pods(ns).List(ctxT(t, 10*time.Second), metav1.ListOptions{LabelSelector: managedSel})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		t.Errorf("the run left pod %s/%s behind", ns, p.Name)
	}
	assertNothingLeft(t)
	return r, code
}

// onlyFailing fails t when a finding other than ids fails or errors.
func onlyFailing(t *testing.T, r *model.Report, ids ...string) {
	t.Helper()
	for _, f := range r.Findings {
		if f.Status.Failing() && !slices.Contains(ids, f.ID) {
			t.Errorf("unexpected %s %s %s: %s", f.Status, f.ID, f.Subject, f.RootCause)
		}
	}
}

func noFailing(t *testing.T, r *model.Report, prefix string) {
	t.Helper()
	for _, f := range r.Findings {
		if strings.HasPrefix(f.ID, prefix) && f.Status.Failing() {
			t.Errorf("%s blamed: %s %s: %s", prefix, f.ID, f.Subject, f.RootCause)
		}
	}
}

// TestExternalFrom: an egress policy in the namespace blocking the lab's
// external host shows when the external probe asks from the affected pod,
// named with the engine's explanation and not blamed on the node; the same
// question without --from, or from a pod the policy does not select,
// passes.
func TestExternalFrom(t *testing.T) {
	ns, _ := fromPods(t)
	egressPolicy(t, ns, "client-egress-cluster-only", clusterOnly())

	r, code := fromRun(t, ns, "external", "--target", extTarget, "--from", ns+"/client")
	f := find(t, r, want{id: "external.policy-denied", status: "fail", subject: "Pod/" + ns + "/client -> " + extTarget,
		rootCause: `egress from ` + ns + `/client is isolated by ` + ns + `/client-egress-cluster-only and no egress rule admits 192\.168\.2\.10 on tcp/80`,
		fix:       "192.168.2.10/32"})
	hasEvidence(t, f, `^egress: `+ns+`/client is isolated by `+ns+`/client-egress-cluster-only`)
	hasEvidence(t, f, `^standin agent `+ns+`/netsleuth-as-client-\S+ \(10\.244\.\S+\) on node nsl-node1 → TCP connect 192\.168\.2\.10:80 .*: timeout`)
	hasEvidence(t, f, `^node agent \S+ \(\S+\) on node nsl-node1 → TCP connect 192\.168\.2\.10:80 .*: ok`)
	if !strings.Contains(f.Title, "NetworkPolicy "+ns+"/client-egress-cluster-only denies it") || code != 1 {
		t.Errorf("title %q, exit %d; want the policy named and exit 1", f.Title, code)
	}
	noFailing(t, r, "node.")

	r, code = active(t, "--probe", "external", "--target", extTarget)
	find(t, r, want{id: "external.ok", status: "pass", subject: extSubject})
	if code != 0 {
		t.Errorf("without --from: exit %d, want 0", code)
	}

	r, code = fromRun(t, ns, "external", "--target", extTarget, "--from", ns+"/free")
	f = find(t, r, want{id: "external.ok", status: "pass", subject: "Pod/" + ns + "/free -> " + extTarget})
	hasEvidence(t, f, `^egress: no NetworkPolicy selects `+ns+`/free for egress`)
	if code != 0 || f.Title != ns+"/free and its node nsl-node1 reach "+extTarget {
		t.Errorf("an unrestricted pod: exit %d, %q", code, f.Title)
	}
}

// TestPodToServiceFrom: from a workload whose egress is denied, the
// pod-to-service probe names the policy instead of the pod network or
// kube-proxy; from a pod beside it the Service works.
func TestPodToServiceFrom(t *testing.T) {
	ns, _ := fromPods(t)
	egressPolicy(t, ns, "client-deny-egress")

	r, code := fromRun(t, ns, "pod-to-service", "--service", ns+"/c", "--from", ns+"/client")
	f := find(t, r, want{id: "pod-to-service.policy-denied", status: "fail", subject: "Service/" + ns + "/c",
		rootCause: `egress from ` + ns + `/client is isolated by ` + ns + `/client-deny-egress and no egress rule admits ` + ns + `/c on tcp/8080`,
		fix:       "kind: NetworkPolicy"})
	if !strings.Contains(f.Title, ns+"/client cannot reach Service "+ns+"/c: NetworkPolicy "+ns+"/client-deny-egress denies it") || code != 1 {
		t.Errorf("title %q, exit %d", f.Title, code)
	}
	hasEvidence(t, f, `standin agent `+ns+`/netsleuth-as-client-\S+ .* \(direct to endpoint 10\.244\.\S+:8080 on nsl-node2\)`)
	noFailing(t, r, "node.")
	for _, id := range []string{"pod-to-service.pod-network", "pod-to-service.kube-proxy"} {
		if countID(r, id, "fail") != 0 {
			t.Errorf("%s blamed for a policy denial", id)
		}
	}

	r, code = fromRun(t, ns, "pod-to-service", "--service", ns+"/c", "--from", ns+"/free")
	f = find(t, r, want{id: "pod-to-service.ok", status: "pass", subject: "Node/nsl-node1"})
	if code != 0 || !strings.HasPrefix(f.Title, "Service "+ns+"/c works from "+ns+"/free on node nsl-node1") {
		t.Errorf("from a free pod: exit %d, %q", code, f.Title)
	}
}

// TestPolicyToAddressAndService: the policy probe answers for an IP and a
// Service destination, each verified by live traffic from the stand-in.
func TestPolicyToAddressAndService(t *testing.T) {
	ns, c := fromPods(t)
	egressPolicy(t, ns, "client-egress-own-pods", samePods())

	r, _ := fromRun(t, ns, "policy", "--from", ns+"/client", "--to", extTarget)
	f := find(t, r, want{id: "policy.verdict", status: "warn", subject: "Address/192.168.2.10",
		rootCause: `egress from ` + ns + `/client is isolated by ` + ns + `/client-egress-own-pods`, fix: "192.168.2.10/32"})
	hasEvidence(t, f, `^verified live: TCP connect 192\.168\.2\.10:80 from stand-in pod `+ns+`/netsleuth-as-client-\S+ \(10\.244\.\S+\) on node nsl-node1: timeout`)
	onlyFailing(t, r, "policy.blocks-dns") // the egress policy admits no DNS: the lint says so

	r, _ = fromRun(t, ns, "policy", "--from", ns+"/free", "--to", extTarget)
	hasEvidence(t, find(t, r, want{id: "policy.verdict", status: "pass", subject: "Address/192.168.2.10"}),
		`^verified live: TCP connect 192\.168\.2\.10:80 from stand-in pod `+ns+`/netsleuth-as-free-\S+ .*: ok`)

	r, _ = fromRun(t, ns, "policy", "--from", ns+"/client", "--to", ns+"/svc/c:80")
	f = find(t, r, want{id: "policy.verdict", status: "pass", subject: "Pod/" + ns + "/c"})
	hasEvidence(t, f, `^Service `+ns+`/c port tcp/80 → targetPort 8080: endpoint `+regexp.QuoteMeta(c.Status.PodIP)+`:8080 \(pod `+ns+`/c\)`)
	hasEvidence(t, f, `^egress: `+ns+`/client is isolated by `+ns+`/client-egress-own-pods; allowed by `)
	hasEvidence(t, f, `^verified live: TCP connect `+regexp.QuoteMeta(c.Status.PodIP)+`:8080 from stand-in pod `+ns+`/netsleuth-as-client-\S+ .*: ok`)
	onlyFailing(t, r, "policy.blocks-dns")

	allowIngressFrom(t, ns, "c-from-free-only", map[string]string{"app": "c"}, map[string]string{"app": "free"})
	r, _ = fromRun(t, ns, "policy", "--from", ns+"/client", "--to", ns+"/svc/c:80")
	f = find(t, r, want{id: "policy.verdict", status: "warn", subject: "Pod/" + ns + "/c", rootCause: `ingress to ` + ns + `/c is isolated by ` + ns + `/c-from-free-only`})
	hasEvidence(t, f, `^verified live: TCP connect `+regexp.QuoteMeta(c.Status.PodIP)+`:8080 from stand-in pod .*: timeout`)
}

// TestFromBadInput: a --from or --to the cluster does not have, a source
// no probe can ask from, and a --from the policy probe cannot use alone are
// one sentence each, exit 2, and create nothing.
func TestFromBadInput(t *testing.T) {
	ns, _ := fromPods(t)
	k := []string{"--kubeconfig", kubeconfig}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"check", "--probe", "external", "--target", extTarget, "--from", ns + "/nope"}, "--from: pod " + ns + "/nope not found"},
		{[]string{"check", "--probe", "pod-to-service", "--service", ns + "/c", "--from", ns + "/deployment/nope"}, "--from: Deployment " + ns + "/nope not found"},
		{[]string{"check", "--probe", "policy", "--from", ns + "/client", "--to", ns + "/svc/nope:80"}, "--to: Service " + ns + "/nope not found"},
		{[]string{"check", "--probe", "policy", "--from", ns + "/client"}, "is used by no selected probe (probe policy needs --to with it)"},
		{[]string{"check", "--probe", "external", "--target", extTarget, "--from", ns + "/*"}, "is not namespace/pod or namespace/deployment/name"},
		{[]string{"check", "--probe", "policy", "--from", ns + "/client", "--to", ns + "/svc/c:70000"}, `has a bad port "70000"`},
	}
	exclusive(t) // no other run may create agents while the watch looks
	for _, tc := range cases {
		created := watchManaged(t)
		stdout, stderr, code := netsleuthCmd(t, append(append(tc.args, k...), agentFlags...)...)
		if got := created(); len(got) > 0 {
			t.Errorf("%v created %s", tc.args, strings.Join(got, ", "))
		}
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestExternalFromNodeFault: asked from a workload whose node lost its
// MASQUERADE rule, the answer is the shared node diagnosis, cited by the
// workload's own finding; behind an egress policy that denies the target,
// the policy stays the answer (the first thing the packets meet).
func TestExternalFromNodeFault(t *testing.T) {
	ns, _ := fromPods(t)
	egressPolicy(t, ns, "client-egress-cluster-only", clusterOnly())
	withFault(t, "snat", "--node", "nsl-node1")

	r, code := fromRun(t, ns, "external", "--target", extTarget, "--from", ns+"/free")
	c := find(t, r, want{id: "node.no-masquerade", status: "fail", subject: "Node/nsl-node1", fix: "-j MASQUERADE"})
	s := symptomOf(t, r, c, "external.pod-unreachable")
	if s.Subject.String() != "Pod/"+ns+"/free -> "+extTarget || !strings.HasPrefix(s.Title, ns+"/free cannot reach "+extTarget+", the node nsl-node1 can") || code != 1 {
		t.Errorf("symptom %s %q, exit %d", s.Subject, s.Title, code)
	}

	r, _ = fromRun(t, ns, "external", "--target", extTarget, "--from", ns+"/client")
	find(t, r, want{id: "external.policy-denied", status: "fail", rootCause: ns + `/client-egress-cluster-only`})
	noFailing(t, r, "node.")
}
