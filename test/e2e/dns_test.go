//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/netsleuth/netsleuth/model"
)

// dnsCheck runs the dns probe (and any other probes given) with the agent
// image the lab built and the lab upstream's external name.
func dnsCheck(t *testing.T, args ...string) (*model.Report, int) {
	t.Helper()
	base := []string{"--probe", "dns", "--agent-image", "netsleuth.local/netsleuth:dev", "--agent-pull-policy", "Never", "--target", "ext.netsleuth.test"}
	return check(t, append(base, args...)...)
}

// TestDNSHealthy: configuration and every live hop pass from both nodes.
func TestDNSHealthy(t *testing.T) {
	exclusive(t)
	r, code := dnsCheck(t)
	if code != 0 {
		t.Errorf("exit %d on healthy DNS, want 0", code)
	}
	find(t, r, want{id: "services.ok", status: "pass", subject: "Service/kube-system/kube-dns"})
	find(t, r, want{id: "dns.upstream", status: "pass", subject: "ConfigMap/kube-system/coredns"})
	find(t, r, want{id: "dns.live-upstream", status: "pass", subject: "DNSServer/10.250.0.53"})
	for _, node := range []string{"Node/nsl-node1", "Node/nsl-node2"} {
		find(t, r, want{id: "kubelet.cluster-dns", status: "pass", subject: node})
		find(t, r, want{id: "dns.live-kube-dns", status: "pass", subject: node})
		f := find(t, r, want{id: "dns.live-resolution", status: "pass", subject: node})
		if !strings.Contains(strings.Join(f.Evidence, "\n"), "ndots:5") {
			t.Errorf("%s: the search-path cost is missing: %v", node, f.Evidence)
		}
	}
	if n := countID(r, "dns.live-coredns-pod", "pass"); n != 2 {
		t.Errorf("want both CoreDNS pods answering from every node, got %d pass findings", n)
	}
}

// TestDNSEgressPolicyBlocksUDP53: an egress policy that admits only tcp/53
// breaks lookups in its namespace (proved from a pod there) and is named.
func TestDNSEgressPolicyBlocksUDP53(t *testing.T) {
	exclusive(t)
	ns := namespace(t, nil)
	startPod(t, ns, echoPod("app", "nsl-node1", map[string]string{"app": "web"}))
	tcp := corev1.ProtocolTCP
	_, err := kube.NetworkingV1().NetworkPolicies(ns).Create(ctxT(t, 10*time.Second), &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "dns-tcp-only"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(53))}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "lookups from the namespace fail", func() (bool, string) {
		out, err := execIn(ctxT(t, 10*time.Second), ns, "app", "timeout", "3", "nslookup", "kubernetes.default.svc.cluster.local")
		return err != nil && !strings.Contains(out, "Address: 10.96.0.1"), out
	})
	r, code := dnsCheck(t, "-n", ns)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	blocks := want{id: "policy.blocks-dns", status: "fail", rootCause: ns + `/dns-tcp-only isolate egress of pods in ` + ns, fix: "port: 53"}
	f := find(t, r, blocks)
	if f.Subject == nil || f.Subject.Namespace != ns || !strings.Contains(f.Subject.Name, "dns-tcp-only") {
		t.Errorf("subject %+v does not name the policy", f.Subject)
	}
	if !fixMentions(f, "protocol: UDP") {
		t.Errorf("the fix does not admit udp/53: %+v", f.Fixes)
	}
	// The fix is a policy admitting DNS: applied, the lint passes and the
	// pod's own lookups work again.
	proveFix(t, r, blocks, func() *model.Report { r, _ := dnsCheck(t, "-n", ns); return r })
	eventually(t, 20*time.Second, "lookups from the namespace work again", func() (bool, string) {
		out, err := execIn(ctxT(t, 10*time.Second), ns, "app", "timeout", "3", "nslookup", "kubernetes.default.svc.cluster.local")
		return err == nil && strings.Contains(out, "10.96.0.1"), out
	})
}

// TestDNSNodeLocal: with the lab's NodeLocal DNS cache the cache is checked on
// every node and pods use it; then the cache is taken off nsl-node2 while its
// kubelet still hands pods 169.254.20.10 (address configured, nothing
// listening), and both halves name that hop on that node.
func TestDNSNodeLocal(t *testing.T) {
	withFault(t, "nodelocal")
	r, code := dnsCheck(t)
	if code != 0 {
		t.Errorf("exit %d with a healthy NodeLocal cache, want 0", code)
	}
	find(t, r, want{id: "dns.nodelocal", status: "pass", subject: "DaemonSet/kube-system/node-local-dns"})
	for _, node := range []string{"nsl-node1", "nsl-node2"} {
		find(t, r, want{id: "dns.nodelocal-ready", status: "pass", subject: "Node/" + node})
		f := find(t, r, want{id: "kubelet.cluster-dns", status: "pass", subject: "Node/" + node})
		if !strings.Contains(f.Title, "169.254.20.10 is the NodeLocal DNS cache address") {
			t.Errorf("%s: %q", node, f.Title)
		}
		find(t, r, want{id: "dns.live-node-local", status: "pass", subject: "Node/" + node})
		find(t, r, want{id: "dns.live-resolution", status: "pass", subject: "Node/" + node})
	}

	ctx := ctxT(t, 2*time.Minute)
	patch := []byte(`{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/hostname":"nsl-node1"}}}}}`)
	if _, err := kube.AppsV1().DaemonSets("kube-system").Patch(ctx, "node-local-dns", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=node-local-dns", FieldSelector: "spec.nodeName=nsl-node2"})
		if err != nil || len(pods.Items) > 0 {
			return false, nil
		}
		// The new template replaces nsl-node1's pod too: wait until it is
		// Ready again, or the run would see it Pending.
		ds, err := kube.AppsV1().DaemonSets("kube-system").Get(ctx, "node-local-dns", metav1.GetOptions{})
		st := ds.Status
		return err == nil && st.ObservedGeneration >= ds.Generation && st.DesiredNumberScheduled == 1 &&
			st.UpdatedNumberScheduled == 1 && st.NumberReady == 1 && st.NumberUnavailable == 0, nil
	})
	if err != nil {
		t.Fatalf("node-local-dns did not settle on nsl-node1 alone: %v", err)
	}
	r, code = dnsCheck(t)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	missing := want{id: "dns.nodelocal-not-ready", status: "fail", subject: "Node/nsl-node2",
		rootCause: `nsl-node2 points pods at the NodeLocal DNS cache \(169\.254\.20\.10\) but the node-local-dns DaemonSet's nodeSelector \(kubernetes.io/hostname=nsl-node1\) excludes it`,
		fix:       `"nodeSelector":{"kubernetes.io/hostname":null}`}
	c := find(t, r, missing)
	symptomOf(t, r, c, "dns.live-node-local")
	symptomOf(t, r, c, "dns.live-resolution-failed")
	find(t, r, want{id: "dns.nodelocal-ready", status: "pass", subject: "Node/nsl-node1"})
	find(t, r, want{id: "dns.live-node-local", status: "pass", subject: "Node/nsl-node1"})
	proveFix(t, r, missing, func() *model.Report { r, _ := dnsCheck(t); return r })
}

func countID(r *model.Report, id, status string) int {
	n := 0
	for _, f := range r.Findings {
		if f.ID == id && string(f.Status) == status {
			n++
		}
	}
	return n
}
