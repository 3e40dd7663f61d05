//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netsleuth/netsleuth/model"
)

// traceRun runs `netsleuth trace FROM TO -o json` with the lab's agent image.
func traceRun(t *testing.T, from, to string, args ...string) (*model.Report, int) {
	t.Helper()
	r, code := check(t, append(append([]string{"--probe", "trace", "--from", from, "--to", to}, agentFlags...), args...)...)
	assertNothingLeft(t)
	return r, code
}

// hops returns the report's trace hops by ID, failing when the trace is absent.
func hops(t *testing.T, r *model.Report) map[string]model.Finding {
	t.Helper()
	out := map[string]model.Finding{}
	for _, f := range r.Findings {
		if strings.HasPrefix(f.ID, "trace.") {
			out[f.ID] = f
		}
	}
	if len(out) == 0 {
		t.Fatalf("no trace hops in the report: %+v", r.Findings)
	}
	return out
}

// brokenAt checks the first broken hop is id with the cause, that every hop
// before it passed and every hop after it was not reached.
func brokenAt(t *testing.T, r *model.Report, id string, cause want) model.Finding {
	t.Helper()
	order := []string{"trace.dns", "trace.service", "trace.policy", "trace.source-node", "trace.destination", "trace.connection"}
	hs := hops(t, r)
	seen := false
	for _, h := range order {
		f, ok := hs[h]
		switch {
		case !ok:
		case h == id:
			seen = true
			if !f.Status.Failing() {
				t.Errorf("hop %s is %s, want it broken: %s", h, f.Status, f.Title)
			}
		case !seen && f.Status != model.StatusPass && f.Status != model.StatusWarn:
			t.Errorf("hop %s before the broken one is %s: %s", h, f.Status, f.RootCause)
		case seen && f.Status != model.StatusSkip:
			t.Errorf("hop %s after the broken one is %s, want not reached", h, f.Status)
		}
	}
	if !seen {
		t.Fatalf("hop %s is not in the trace: %+v", id, hs)
	}
	f := hs[id]
	if cause.id != "" {
		c := find(t, r, cause)
		if f.CausedBy != c.Key {
			t.Errorf("hop %s is not a symptom of %s (causedBy %q)", id, c.Key, f.CausedBy)
		}
	} else {
		assertFinding(t, f, cause)
	}
	return f
}

func allPass(t *testing.T, r *model.Report, code int, n int) {
	t.Helper()
	hs := hops(t, r)
	for id, f := range hs {
		if f.Status != model.StatusPass {
			t.Errorf("healthy trace: hop %s is %s: %s %s", id, f.Status, f.Title, f.RootCause)
		}
	}
	if len(hs) != n || code != 0 {
		t.Errorf("want %d passing hops and exit 0, got %d hops, exit %d", n, len(hs), code)
	}
}

// TestTraceHealthy: a trace to each kind of destination passes every hop.
func TestTraceHealthy(t *testing.T) {
	ns, _, _, _ := labPods(t)
	echoService(t, ns, "c")
	r, code := traceRun(t, ns+"/a", ns+"/c:8080")
	allPass(t, r, code, 4)
	r, code = traceRun(t, ns+"/a", "c."+ns+".svc.cluster.local:80")
	allPass(t, r, code, 6)
	r, code = traceRun(t, ns+"/a", extTarget)
	allPass(t, r, code, 4)
}

// TestTraceNodeFaults: the node faults on the source's node each break the
// source-node hop with the shared node cause.
func TestTraceNodeFaults(t *testing.T) {
	cases := []struct {
		fault string
		cause want
		args  []string
	}{
		{"snat", want{id: "node.no-masquerade", status: "fail", subject: "Node/nsl-node1"}, nil},
		// The bridge CNI turns ip_forward back on when it attaches a pod on the
		// node, so the trace sends from an ephemeral container in a instead.
		{"ip-forward", want{id: "node.ip-forward", status: "fail", subject: "Node/nsl-node1"}, []string{"--policy-live", "ephemeral"}},
		{"node-route", want{id: "node.no-route", status: "fail", subject: "Node/nsl-node1"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.fault, func(t *testing.T) {
			exclusive(t)
			ns, _, _, _ := labPods(t)
			withFault(t, tc.fault, "--node", "nsl-node1")
			r, code := traceRun(t, ns+"/a", extTarget, tc.args...)
			brokenAt(t, r, "trace.source-node", tc.cause)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
		})
	}
}

// TestTracePolicies: an egress policy in the source's namespace that blocks
// an external address, and an ingress deny at the destination, break the
// policy hop with the engine's explanation and a policy fix.
func TestTracePolicies(t *testing.T) {
	ns, _, _, _ := labPods(t)
	tcp := corev1.ProtocolTCP
	egress := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "a-egress-cluster-only"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp}}}}}}
	deny := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "c-deny-ingress"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "c"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	for _, np := range []*networkingv1.NetworkPolicy{egress, deny} {
		if _, err := kube.NetworkingV1().NetworkPolicies(ns).Create(ctxT(t, 10*time.Second), np, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := traceRun(t, ns+"/a", extTarget)
	f := brokenAt(t, r, "trace.policy", want{rootCause: `egress from ` + ns + `/a is isolated by ` + ns + `/a-egress-cluster-only`, fix: "192.168.2.10/32"})
	_ = f
	r, _ = traceRun(t, ns+"/b", ns+"/c:8080")
	brokenAt(t, r, "trace.policy", want{rootCause: `ingress to ` + ns + `/c is isolated by ` + ns + `/c-deny-ingress`, fix: "kind: NetworkPolicy"})
}

// TestTraceKubeProxyStopped: with kube-proxy gone on the source's node, a
// trace to a Service breaks at the source node with the shared kube-proxy cause.
func TestTraceKubeProxyStopped(t *testing.T) {
	ns, _, _, _ := labPods(t)
	echoService(t, ns, "c")
	withFault(t, "kube-proxy", "--node", "nsl-node1")
	r, _ := traceRun(t, ns+"/a", ns+"/svc/c:80")
	brokenAt(t, r, "trace.source-node", want{id: "node.kube-proxy-no-rules", status: "fail", subject: "Node/nsl-node1", fix: "systemctl restart kube-proxy"})
}

// TestTraceCoreDNSZero: a Service name with CoreDNS at zero breaks at name
// resolution, caused by the kube-dns Service's finding.
func TestTraceCoreDNSZero(t *testing.T) {
	ns, _, _, _ := labPods(t)
	echoService(t, ns, "c")
	withFault(t, "coredns-zero")
	r, _ := traceRun(t, ns+"/a", "c."+ns+".svc.cluster.local:80")
	brokenAt(t, r, "trace.dns", want{id: "services.scaled-to-zero", status: "fail", subject: "Service/kube-system/kube-dns"})
}

// TestTraceRefused: a Service whose targetPort nothing listens on breaks at
// the Service hop; a destination whose process does not listen breaks at the
// destination, and neither sends the user to the pod network.
func TestTraceRefused(t *testing.T) {
	ns, _, _, _ := labPods(t)
	_, err := kube.CoreV1().Services(ns).Create(ctxT(t, 10*time.Second), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "wrong-port"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "c"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8081)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the Service has its endpoint", func() (bool, string) {
		sl, err := kube.DiscoveryV1().EndpointSlices(ns).List(ctxT(t, 5*time.Second), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=wrong-port"})
		return err == nil && len(sl.Items) > 0 && len(sl.Items[0].Endpoints) > 0, ""
	})
	r, _ := traceRun(t, ns+"/a", ns+"/svc/wrong-port:80")
	brokenAt(t, r, "trace.service", want{rootCause: `refuse|reset.*nothing listens on 8081`, fix: "targetPort"})
	r, _ = traceRun(t, ns+"/a", ns+"/c:9999")
	f := brokenAt(t, r, "trace.destination", want{rootCause: `reset: the packets arrive.*no process listens on tcp/9999`})
	if strings.Contains(f.RootCause+strings.Join(fixTexts(f), " "), "pod-to-pod") {
		t.Errorf("a refused connection sends the user to the pod network: %+v", f)
	}
}

func fixTexts(f model.Finding) []string {
	var out []string
	for _, x := range f.Fixes {
		out = append(out, x.Description+" "+strings.Join(x.Commands, " "))
	}
	return out
}

// TestTraceBadInput: an unknown pod, an unparseable destination and a port
// out of range are one sentence each, exit 2, nothing created.
func TestTraceBadInput(t *testing.T) {
	ns, _, _, _ := labPods(t)
	cases := []struct{ from, to, want string }{
		{ns + "/nope", "192.168.2.10:80", "FROM: pod " + ns + "/nope not found"},
		{ns + "/a", "not a destination!", `TO "not a destination!" is not`},
		{ns + "/a", ns + "/c:99999", `port "99999" is not 1-65535`},
	}
	for _, tc := range cases {
		stdout, stderr, code := netsleuthCmd(t, append([]string{"trace", tc.from, tc.to, "--kubeconfig", kubeconfig}, agentFlags...)...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("trace %s %s: exit %d, stderr %q; want exit 2 and one line with %q", tc.from, tc.to, code, stderr, tc.want)
		}
		assertNothingLeft(t)
	}
}
