package podcidr

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
)

func known(cidr string, mask int) kube.ClusterNetwork {
	return kube.ClusterNetwork{Source: "kube-controller-manager flags (pod kube-system/kcm)",
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix(cidr)}, NodeMaskV4: mask, NodeMaskV6: 64}
}

func nodes(n int, maxPods int64, cidrf func(i int) string) []Node {
	var out []Node
	for i := 0; i < n; i++ {
		out = append(out, Node{Name: "n" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), PodCIDRs: []string{cidrf(i)}, CapacityPods: maxPods, ActivePods: 5, PodNetworkPods: 3})
	}
	return out
}

func v4(i int) string { return netip.AddrFrom4([4]byte{10, 244, byte(i), 0}).String() + "/24" }

func TestAnalyze(t *testing.T) {
	cases := []struct {
		name string
		in   Input
		want map[string]model.Status
		n    int
	}{
		{"healthy", Input{Nodes: nodes(3, 110, v4), Network: known("10.244.0.0/16", 24)},
			map[string]model.Status{IDNode: model.StatusPass, IDCluster: model.StatusPass}, 4},
		{"undersized for maxPods 250", Input{Nodes: nodes(1, 250, v4), Network: known("10.244.0.0/16", 24)},
			map[string]model.Status{IDNodeCIDRSmall: model.StatusWarn}, 2},
		{"too small for maxPods 300", Input{Nodes: nodes(1, 300, v4), Network: known("10.244.0.0/16", 24)},
			map[string]model.Status{IDNodeCIDRTooSmall: model.StatusFail}, 2},
		{"configz maxPods wins over capacity", Input{Nodes: []Node{{Name: "a", PodCIDRs: []string{"10.0.0.0/26"}, CapacityPods: 32, ConfigzMaxPods: 110}}, Network: known("10.0.0.0/16", 26)},
			map[string]model.Status{IDNodeCIDRTooSmall: model.StatusFail}, 2},
		{"pods high", Input{Nodes: []Node{{Name: "a", PodCIDRs: []string{"10.0.0.0/24"}, CapacityPods: 110, ActivePods: 90}}, Network: known("10.0.0.0/16", 24)},
			map[string]model.Status{IDNodePodsHigh: model.StatusWarn}, 2},
		{"pods full", Input{Nodes: []Node{{Name: "a", PodCIDRs: []string{"10.0.0.0/24"}, CapacityPods: 110, ActivePods: 110}}, Network: known("10.0.0.0/16", 24)},
			map[string]model.Status{IDNodePodsFull: model.StatusFail}, 2},
		{"seed example: /16 with /23 is 128 nodes, 103 used", Input{Nodes: nodes(103, 250, func(i int) string {
			return netip.AddrFrom4([4]byte{192, 168, byte(2 * i), 0}).String() + "/23"
		}), Network: known("192.168.0.0/16", 23)},
			map[string]model.Status{IDClusterHigh: model.StatusWarn, IDNode: model.StatusPass}, 104},
		{"cluster full and a node left without CIDR", Input{Nodes: append(nodes(4, 110, v4), Node{Name: "late", CapacityPods: 110}), Network: known("10.244.0.0/22", 24)},
			map[string]model.Status{IDClusterFull: model.StatusFail, IDNodeNoCIDR: model.StatusFail}, 6},
		{"inferred cluster CIDR never warns", Input{Nodes: nodes(2, 110, v4)},
			map[string]model.Status{IDClusterInferred: model.StatusSkip}, 3},
		{"CNI IPAM without node CIDRs", Input{Nodes: []Node{{Name: "a", CapacityPods: 110}}},
			map[string]model.Status{IDNotAllocated: model.StatusSkip, IDNode: model.StatusPass}, 2},
		{"dual stack", Input{Nodes: []Node{{Name: "a", PodCIDRs: []string{"10.244.0.0/24", "fd00:10:244::/64"}, CapacityPods: 110}},
			Network: kube.ClusterNetwork{Source: "kcm", ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:10:244::/56")}, NodeMaskV4: 24, NodeMaskV6: 64}},
			map[string]model.Status{IDCluster: model.StatusPass, IDNode: model.StatusPass}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.Table = table()
			got := Analyze(c.in)
			kubetest.Expect(t, got, c.n, c.want)
		})
	}
}

func TestSeedArithmetic(t *testing.T) {
	in := Input{Table: table(), Nodes: nodes(128, 250, func(i int) string {
		return netip.AddrFrom4([4]byte{192, 168, byte(2 * i), 0}).String() + "/23"
	}), Network: known("192.168.0.0/16", 23)}
	got := Analyze(in)
	f, ok := kubetest.Find(got, IDClusterFull, "192.168.0.0/16")
	if !ok {
		t.Fatalf("want cluster full, got %+v", got[len(got)-1])
	}
	if !strings.Contains(f.Evidence[1], "2^(23-16) = 128 node blocks; 128 allocated, 0 free") {
		t.Errorf("evidence %q", f.Evidence[1])
	}
	want := "cluster CIDR 192.168.0.0/16 split into /23 node blocks holds 128 nodes and all 128 are allocated"
	if !strings.HasPrefix(f.RootCause, want) {
		t.Errorf("root cause %q", f.RootCause)
	}
}

func TestSupernet(t *testing.T) {
	ps := []netip.Prefix{netip.MustParsePrefix("10.244.0.0/24"), netip.MustParsePrefix("10.244.3.0/24"), netip.MustParsePrefix("10.244.1.0/24")}
	if got := Supernet(ps); got.String() != "10.244.0.0/22" {
		t.Errorf("Supernet = %s", got)
	}
	if got := Supernet(ps[:1]); got.String() != "10.244.0.0/24" {
		t.Errorf("Supernet of one = %s", got)
	}
}

func TestRunWithFakeClient(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "lab-1"}, Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24"}},
		Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	kcm := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-controller-manager-lab-1", Labels: map[string]string{"component": "kube-controller-manager"}},
		Spec: corev1.PodSpec{NodeName: "lab-1", HostNetwork: true, Containers: []corev1.Container{{Name: "kcm", Command: []string{
			"kube-controller-manager", "--allocate-node-cidrs=true", "--cluster-cidr=10.244.0.0/16"}}}}}
	done := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "job-x"}, Spec: corev1.PodSpec{NodeName: "lab-1"}, Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}
	cs := fake.NewClientset(node, kcm, done)
	rec := &kubetest.Recorder{}
	p := New()
	if err := p.Run(context.Background(), &probes.Env{Kube: cs}, rec); err != nil {
		t.Fatal(err)
	}
	kubetest.CheckContract(t, rec.Findings)
	n, ok := kubetest.Find(rec.Findings, IDNode, "lab-1")
	if !ok {
		t.Fatalf("no node pass: %+v", rec.Findings)
	}
	if n.Evidence[0] != "node lab-1: podCIDRs=10.244.0.0/24, status.capacity.pods=110, 1 active pods (0 on the pod network)" ||
		!strings.HasPrefix(n.Evidence[1], "configz not readable: ") {
		t.Errorf("evidence %q", n.Evidence)
	}
	c, ok := kubetest.Find(rec.Findings, IDCluster, "10.244.0.0/16")
	if !ok || !strings.Contains(c.Evidence[0], "kube-controller-manager flags (pod kube-system/kube-controller-manager-lab-1)") {
		t.Errorf("cluster finding %+v", rec.Findings)
	}

	// configz readable: its maxPods replaces the capacity.
	withConfigz := probe{configz: func(context.Context, *probes.Env, string) (int32, error) { return 250, nil }}
	rec = &kubetest.Recorder{}
	if err := withConfigz.Run(context.Background(), &probes.Env{Kube: cs}, rec); err != nil {
		t.Fatal(err)
	}
	if kubetest.Count(rec.Findings, IDNodeCIDRSmall, model.StatusWarn) != 1 {
		t.Errorf("configz maxPods 250 on a /24 should warn: %+v", rec.Findings)
	}
	// A forbidden configz is evidence, not an error.
	forbidden := probe{configz: func(context.Context, *probes.Env, string) (int32, error) {
		return 0, errors.New("nodes \"lab-1\" is forbidden")
	}}
	if err := forbidden.Run(context.Background(), &probes.Env{Kube: cs}, &kubetest.Recorder{}); err != nil {
		t.Fatal(err)
	}
}

// A node whose kubelet stopped reporting is judged on status.capacity.pods
// without a configz read (it could only time out), and the probe says so
// once, citing nodes.not-ready.
func TestRunSkipsConfigzOfNodesNotReporting(t *testing.T) {
	nodes := kubetest.SyntheticNodes(2, func(i int) bool { return i == 1 }) // node-0000 Ready=Unknown, node-0001 Ready
	for i := range nodes {
		nodes[i].Status.Capacity = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}
	}
	var mu sync.Mutex
	var read []string
	p := probe{configz: func(_ context.Context, _ *probes.Env, node string) (int32, error) {
		mu.Lock()
		defer mu.Unlock()
		read = append(read, node)
		return 110, nil
	}}
	rec := &kubetest.Recorder{}
	if err := p.Run(context.Background(), &probes.Env{Kube: fake.NewClientset(&nodes[0], &nodes[1])}, rec); err != nil {
		t.Fatal(err)
	}
	kubetest.CheckContract(t, rec.Findings)
	if len(read) != 1 || read[0] != "node-0001" {
		t.Errorf("configz read on %v, want node-0001 only", read)
	}
	n, _ := kubetest.Find(rec.Findings, IDNode, "node-0000")
	if n.Status != model.StatusPass || !strings.Contains(strings.Join(n.Evidence, " "), "status.capacity.pods=110") ||
		!strings.Contains(strings.Join(n.Evidence, " "), "kubelet is not reporting") {
		t.Errorf("the silent node's finding %+v", n)
	}
	cause, ok := kubetest.Find(rec.Findings, kube.IDNodesNotReady, "nodes")
	sym, ok2 := kubetest.Find(rec.Findings, "podcidr.nodes-skipped", "nodes")
	if !ok || !ok2 || sym.CausedBy != cause.Key || !strings.HasSuffix(sym.Title, "of 1 node(s) that are not Ready: node-0000") {
		t.Errorf("cause %+v\nsymptom %+v", cause, sym)
	}
}
