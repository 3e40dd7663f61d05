//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const externalURL = "http://192.168.2.10/"

// labPods starts two echo pods on node 1 and one on node 2.
func labPods(t *testing.T) (ns string, a, b, c *corev1.Pod) {
	ns = namespace(t, nil)
	a = startPod(t, ns, echoPod("a", "nsl-node1", map[string]string{"app": "a"}))
	b = startPod(t, ns, echoPod("b", "nsl-node1", map[string]string{"app": "b"}))
	c = startPod(t, ns, echoPod("c", "nsl-node2", map[string]string{"app": "c"}))
	return ns, a, b, c
}

// echoService puts a ClusterIP Service (port 80 → 8080) in front of app.
func echoService(t *testing.T, ns, app string) *corev1.Service {
	t.Helper()
	svc, err := kube.CoreV1().Services(ns).Create(ctxT(t, 10*time.Second), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestLabHealthy proves the paths every probe relies on work in the healthy
// lab: same-node and cross-node pod traffic, ClusterIP, cluster DNS, the
// lab's upstream DNS, and pods on both nodes reaching the external subnet.
func TestLabHealthy(t *testing.T) {
	ns, a, b, c := labPods(t)
	svc := echoService(t, ns, "c")
	cases := []struct{ name, from, url string }{
		{"same node", "a", url(b.Status.PodIP, 8080)},
		{"node1 to node2", "a", url(c.Status.PodIP, 8080)},
		{"node2 to node1", "c", url(a.Status.PodIP, 8080)},
		{"ClusterIP from node1", "a", url(svc.Spec.ClusterIP, 80)},
		{"Service name via cluster DNS", "a", "http://c." + ns + ".svc.cluster.local/"},
		{"external subnet from node1", "a", externalURL},
		{"external subnet from node2", "c", externalURL},
		{"upstream DNS name", "c", "http://ext.netsleuth.test/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eventually(t, 20*time.Second, tc.from+" → "+tc.url, func() (bool, string) { return reach(t, ns, tc.from, tc.url) })
		})
	}
}

// TestLabFaults proves each fault breaks what it should, for its own reason,
// only where it should, and that unfault mends it.
func TestLabFaults(t *testing.T) {
	exclusive(t)
	ns, _, _, _ := labPods(t)
	svc := echoService(t, ns, "c")
	clusterIP := url(svc.Spec.ClusterIP, 80)
	cases := []struct {
		fault      string
		broken, ok string // target URL broken from pod a (node 1), still fine from pod c (node 2)
	}{
		{"snat", externalURL, externalURL},
		{"ip-forward", externalURL, externalURL},
		{"node-route", externalURL, externalURL},
		{"kube-proxy", clusterIP, clusterIP},
	}
	for _, tc := range cases {
		t.Run(tc.fault, func(t *testing.T) {
			eventually(t, 20*time.Second, "before the fault", func() (bool, string) { return reach(t, ns, "a", tc.broken) })
			lab(t, "fault", tc.fault, "--node", "nsl-node1")
			undone := false
			t.Cleanup(func() { // a failed check still unfaults: the next case starts healthy
				if undone {
					return
				}
				if out, err := labCmd("unfault", tc.fault); err != nil {
					t.Errorf("unfault %s: %v\n%s", tc.fault, err, out)
				}
			})
			if ok, out := reach(t, ns, "a", tc.broken); ok {
				t.Errorf("with fault %s, pod a on nsl-node1 still reaches %s: %s", tc.fault, tc.broken, out)
			}
			eventually(t, 10*time.Second, "node 2 unaffected", func() (bool, string) { return reach(t, ns, "c", tc.ok) })
			lab(t, "unfault", tc.fault)
			undone = true
			eventually(t, 20*time.Second, "after unfault", func() (bool, string) { return reach(t, ns, "a", tc.broken) })
		})
	}
}

func TestLabFaultCoreDNSZero(t *testing.T) {
	ns, _, _, _ := labPods(t)
	lookup := func() (bool, string) {
		out, err := execIn(ctxT(t, 15*time.Second), ns, "a", "timeout", "4", "nslookup", "kubernetes.default.svc.cluster.local", "10.96.0.10")
		return err == nil && strings.Contains(out, "10.96.0.1"), out
	}
	eventually(t, 20*time.Second, "DNS before the fault", lookup)
	withFault(t, "coredns-zero")
	if ok, out := lookup(); ok {
		t.Fatalf("DNS still answers with CoreDNS scaled to 0: %s", out)
	}
}

func TestLabFaultKubeletConfig(t *testing.T) {
	field := func() bool {
		raw, err := kube.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/nsl-node2/proxy/configz").DoRaw(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var cz struct {
			KubeletConfig struct {
				MakeIPTablesUtilChains bool `json:"makeIPTablesUtilChains"`
			} `json:"kubeletconfig"`
		}
		if err := json.Unmarshal(raw, &cz); err != nil {
			t.Fatal(err)
		}
		return cz.KubeletConfig.MakeIPTablesUtilChains
	}
	if !field() {
		t.Fatal("healthy lab kubelet has makeIPTablesUtilChains=false")
	}
	withFault(t, "kubelet-config", "--node", "nsl-node2", "--set", "makeIPTablesUtilChains=false")
	if field() {
		t.Fatal("kubelet-config fault did not change makeIPTablesUtilChains in configz")
	}
}

// allowIngressFrom creates a NetworkPolicy isolating the pods matching to for
// ingress and admitting only pods matching from.
func allowIngressFrom(t *testing.T, ns, name string, to, from map[string]string) {
	t.Helper()
	_, err := kube.NetworkingV1().NetworkPolicies(ns).Create(ctxT(t, 10*time.Second), &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: to},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				PodSelector: &metav1.LabelSelector{MatchLabels: from}}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLabEnforcer proves the lab enforces NetworkPolicy across nodes, and
// that the enforcer fault really stops enforcement.
func TestLabEnforcer(t *testing.T) {
	ns, _, _, c := labPods(t)
	target := url(c.Status.PodIP, 8080)
	eventually(t, 20*time.Second, "before the policy", func() (bool, string) { return reach(t, ns, "a", target) })
	allowIngressFrom(t, ns, "c-from-b-only", map[string]string{"app": "c"}, map[string]string{"app": "b"})
	eventually(t, 20*time.Second, "a denied by policy", func() (bool, string) {
		ok, out := reach(t, ns, "a", target)
		return !ok, out
	})
	eventually(t, 20*time.Second, "b allowed by policy", func() (bool, string) { return reach(t, ns, "b", target) })
	withFault(t, "enforcer")
	eventually(t, 20*time.Second, "a passes with the enforcer stopped", func() (bool, string) { return reach(t, ns, "a", target) })
}

// TestLabNodeLocal: the NodeLocal DNS mode answers cluster and upstream names
// on 169.254.20.10 on both nodes, kubelets hand it to new pods, and switching
// it off removes the address again.
func TestLabNodeLocal(t *testing.T) {
	withFault(t, "nodelocal")
	ns := namespace(t, nil)
	for _, node := range []string{"nsl-node1", "nsl-node2"} {
		pod := startPod(t, ns, echoPod("on-"+node, node, nil))
		eventually(t, 10*time.Second, node+": pod resolv.conf uses NodeLocal DNS", func() (bool, string) {
			out, err := execIn(ctxT(t, 10*time.Second), ns, pod.Name, "cat", "/etc/resolv.conf")
			return err == nil && strings.Contains(out, "nameserver 169.254.20.10"), out
		})
		// busybox nslookup exits 1 when the AAAA half fails: look for the answer.
		for name, addr := range map[string]string{"kubernetes.default.svc.cluster.local": "10.96.0.1", "ext.netsleuth.test": "192.168.2.10"} {
			eventually(t, 20*time.Second, node+" resolves "+name+" via 169.254.20.10", func() (bool, string) {
				out, _ := execIn(ctxT(t, 10*time.Second), ns, pod.Name, "timeout", "4", "nslookup", name, "169.254.20.10")
				return strings.Contains(out, "Address: "+addr+"\n"), out
			})
		}
	}
}
