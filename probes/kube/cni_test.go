package kube

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func ds(ns, name, image string) appsv1.DaemonSet {
	d := appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "main", Image: image}}
	return d
}

func podOn(node, ip string, ann map[string]string) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns-1", Annotations: ann},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{PodIP: ip}}
}

func nodeWith(name, cidr string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr}}
}

func TestDetectCNI(t *testing.T) {
	lab := []corev1.Node{nodeWith("nsl-node1", "10.244.0.0/24"), nodeWith("nsl-node2", "10.244.1.0/24")}
	cases := []struct {
		name     string
		in       CNIObjects
		want     string
		evidence string
	}{
		{"calico's ClusterInformation names the version", CNIObjects{
			ClusterInformation: []byte(`{"kind":"ClusterInformation","spec":{"calicoVersion":"v3.31.0","datastoreReady":true}}`),
			Pods:               []corev1.Pod{podOn("nsl-node1", "10.244.0.5", nil)}, Nodes: lab,
		}, "Calico v3.31.0", "ClusterInformation default"},
		{"an operator install's calico-node DaemonSet", CNIObjects{
			DaemonSets: []appsv1.DaemonSet{ds("kube-system", "kube-proxy", "registry.k8s.io/kube-proxy:v1.36.3"), ds("calico-system", "calico-node", "quay.io/calico/node:v3.30.2")},
		}, "Calico v3.30.2", "DaemonSet calico-system/calico-node image quay.io/calico/node:v3.30.2"},
		{"cilium with a digest has no version", CNIObjects{
			DaemonSets: []appsv1.DaemonSet{ds("kube-system", "cilium", "quay.io/cilium/cilium@sha256:0123")},
		}, "Cilium", "DaemonSet kube-system/cilium"},
		{"flannel from a registry with a port", CNIObjects{
			DaemonSets: []appsv1.DaemonSet{ds("kube-flannel", "kube-flannel-ds", "registry.local:5000/flannel/flannel:v0.26.1")},
		}, "flannel v0.26.1", "kube-flannel/kube-flannel-ds"},
		{"calico's plugin annotations without its objects", CNIObjects{
			Pods: []corev1.Pod{podOn("nsl-node1", "10.244.0.5", map[string]string{"cni.projectcalico.org/podIP": "10.244.0.5/32"})}, Nodes: lab,
		}, "Calico", "cni.projectcalico.org/podIP=10.244.0.5/32"},
		{"the bridge profile: pods on their node's pod CIDR", CNIObjects{
			Pods: []corev1.Pod{podOn("nsl-node2", "10.244.1.7", nil)}, Nodes: lab,
		}, "plain bridge", "pod kube-system/coredns-1 has 10.244.1.7 from its node's pod CIDR 10.244.1.0/24"},
		{"a pod outside its node's CIDR names nothing", CNIObjects{
			Pods: []corev1.Pod{podOn("nsl-node1", "172.16.3.4", nil)}, Nodes: lab,
		}, "unknown", "no CNI agent DaemonSet"},
		{"a broken ClusterInformation falls through to the DaemonSets", CNIObjects{
			ClusterInformation: []byte(`not json`), DaemonSets: []appsv1.DaemonSet{ds("kube-system", "weave-net", "weaveworks/weave-kube:2.8.1")},
		}, "Weave Net 2.8.1", "weave-net"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DetectCNI(tc.in)
			if c.String() != tc.want {
				t.Errorf("String() = %q, want %q (%+v)", c.String(), tc.want, c)
			}
			if !strings.Contains(strings.Join(c.Evidence, "\n"), tc.evidence) {
				t.Errorf("evidence %q lacks %q", c.Evidence, tc.evidence)
			}
		})
	}
}

func TestParseCalicoObjects(t *testing.T) {
	pools, err := ParseCalicoPools([]byte(`{"items":[
		{"metadata":{"name":"pods-nsl-node1"},"spec":{"cidr":"10.244.0.0/24","natOutgoing":true}},
		{"metadata":{"name":"old"},"spec":{"cidr":"10.244.0.0/16","disabled":true}},
		{"metadata":{"name":"bad"},"spec":{"cidr":"not a cidr"}},
		{"metadata":{"name":"pods-nsl-node2"},"spec":{"cidr":"10.244.1.0/24"}}]}`))
	if err != nil || len(pools) != 3 {
		t.Fatalf("pools %+v err %v", pools, err)
	}
	c := &Calico{Pools: pools}
	if p, ok := c.PoolFor(netip.MustParseAddr("10.244.1.9")); !ok || p.Name != "pods-nsl-node2" || p.NATOutgoing {
		t.Errorf("pool for 10.244.1.9: %+v %v", p, ok)
	}
	if p, ok := c.PoolFor(netip.MustParseAddr("10.244.7.1")); ok {
		t.Errorf("a disabled pool holds nothing, got %+v", p)
	}
	if _, err := ParseCalicoPools([]byte(`[`)); err == nil {
		t.Error("want an error for a broken list")
	}
	ports, err := ParseFelixHealthPorts([]byte(`{"items":[{"metadata":{"name":"default"},"spec":{"healthPort":9199}},
		{"metadata":{"name":"node.nsl-node2"},"spec":{"healthPort":9299}},{"metadata":{"name":"node.nsl-node1"},"spec":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	c.HealthPorts = ports
	for node, want := range map[string]int{"nsl-node1": 9199, "nsl-node2": 9299} {
		if got := c.FelixHealthPort(node); got != want {
			t.Errorf("health port of %s = %d, want %d", node, got, want)
		}
	}
	if got := (*Calico)(nil).FelixHealthPort("x"); got != DefaultFelixHealthPort {
		t.Errorf("no Calico objects: port %d", got)
	}
}

// A fake clientset has no REST client for custom resources: the discovery
// says what it could read and never fails.
func TestDiscoverCNIWithFake(t *testing.T) {
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}, Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{PodIP: "10.244.0.3"}})
	c := DiscoverCNI(context.Background(), NewSnapshot(cs, ""))
	if c.Name != "bridge" {
		t.Errorf("got %+v", c)
	}
}
