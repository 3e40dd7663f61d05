package kube_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
)

// bigCluster: 2,000 nodes, one in 20 Ready (100), the rest NotReady.
func bigCluster() []corev1.Node {
	return kubetest.SyntheticNodes(2000, func(i int) bool { return i%20 == 0 || i == 1 })
}

func TestSampleNodesBoundsAndSpreads(t *testing.T) {
	all := bigCluster()
	s := kube.SampleNodes(all, 20, nil)
	if s.Total != 2000 || s.Ready != 101 || len(s.NotReady) != 1899 || len(s.Nodes) != 20 || !s.Sampled() {
		t.Fatalf("total %d ready %d notReady %d sampled %d, want 2000 101 1899 20", s.Total, s.Ready, len(s.NotReady), len(s.Nodes))
	}
	zones, control := map[string]int{}, 0
	for _, n := range s.Nodes {
		if !kube.Ready(n) {
			t.Errorf("sampled NotReady node %s", n.Name)
		}
		zones[n.Labels[corev1.LabelTopologyZone]]++
		if _, ok := n.Labels["node-role.kubernetes.io/control-plane"]; ok {
			control++
		}
	}
	if len(zones) != 3 || control == 0 {
		t.Errorf("sample spans zones %v and %d control-plane node(s), want all 3 zones and at least one control-plane node", zones, control)
	}
	for z, n := range zones {
		if n < 5 {
			t.Errorf("zone %s has %d of 20 sampled nodes: not spread", z, n)
		}
	}
	if !slices.IsSortedFunc(s.Nodes, func(a, b corev1.Node) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("sample is not sorted by name")
	}
	if first := kube.Names(s.Nodes); slices.Equal(first, kube.Names(readyByName(all)[:20])) {
		t.Error("sample is the first 20 Ready names: not spread by hash")
	}
}

func readyByName(all []corev1.Node) []corev1.Node {
	r, _ := kube.ReadyNodes(all)
	return r
}

func TestSampleNodesIsDeterministic(t *testing.T) {
	all := bigCluster()
	want := kube.SampleNodes(all, 20, nil).Names()
	r := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		shuffled := slices.Clone(all)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := kube.SampleNodes(shuffled, 20, nil).Names(); !slices.Equal(got, want) {
			t.Fatalf("a rerun over the same nodes in another order picked %v, want %v", got, want)
		}
	}
	// One node more changes at most one pick in its own group.
	more := append(slices.Clone(all), kubetest.SyntheticNodes(2001, func(int) bool { return true })[2000])
	got := kube.SampleNodes(more, 20, nil).Names()
	diff := 0
	for _, n := range got {
		if !slices.Contains(want, n) {
			diff++
		}
	}
	if diff > 1 {
		t.Errorf("adding one node replaced %d sampled nodes, want at most 1: %v vs %v", diff, got, want)
	}
}

func TestSampleNodesPinnedAndSmall(t *testing.T) {
	all := bigCluster()
	// node-0960 is Ready, node-0961 NotReady: only the first is kept.
	s := kube.SampleNodes(all, 5, []string{"node-0961", "node-0960"})
	if !slices.Contains(s.Names(), "node-0960") || slices.Contains(s.Names(), "node-0961") || len(s.Nodes) != 5 {
		t.Errorf("sample %v, want 5 nodes with node-0960 and without NotReady node-0961", s.Names())
	}
	if !slices.Equal(s.Pinned, []string{"node-0960"}) {
		t.Errorf("pinned %v, want [node-0960]", s.Pinned)
	}
	small := kubetest.SyntheticNodes(3, func(i int) bool { return i != 2 })
	s = kube.SampleNodes(small, 0, nil)
	if s.Max != kube.DefaultMaxNodes || s.Sampled() || !slices.Equal(s.Names(), []string{"node-0000", "node-0001"}) {
		t.Errorf("small cluster sample %v (max %d, sampled %v), want both Ready nodes", s.Names(), s.Max, s.Sampled())
	}
	if _, ok := kube.SampledFinding(s); ok {
		t.Error("a sample that keeps every Ready node has a nodes.sampled finding")
	}
}

func TestNotReadyFindingGroupsThousands(t *testing.T) {
	s := kube.SampleNodes(bigCluster(), 20, nil)
	f, ok := kube.NotReadyFinding(s)
	if !ok {
		t.Fatal("no nodes.not-ready finding for 1,899 NotReady nodes")
	}
	if f.ID != kube.IDNodesNotReady || f.Status != model.StatusFail || f.Key != "nodes.not-ready|Cluster/nodes" {
		t.Errorf("id %s status %s key %s", f.ID, f.Status, f.Key)
	}
	wantTitle := "1,899 of 2,000 nodes are not Ready: node-0002, node-0003, node-0004, node-0005, node-0006, node-0007, node-0008, node-0009, node-0010, node-0011, … (1,889 more)"
	if f.Title != wantTitle {
		t.Errorf("title\n %q\nwant\n %q", f.Title, wantTitle)
	}
	if len(f.Evidence) != 1899 || !strings.Contains(f.Evidence[0], "node-0002: no Ready condition") || !strings.Contains(f.Evidence[1], "node-0003: Ready=Unknown") || !strings.Contains(f.Evidence[2], "node-0004: Ready=False (KubeletNotReady)") {
		t.Errorf("evidence %d lines, first %q", len(f.Evidence), f.Evidence[:3])
	}
	if !strings.Contains(f.RootCause, "stopped reporting") || !strings.Contains(f.RootCause, "network plugin") {
		t.Errorf("root cause %q names neither unreachable kubelets nor the network plugin", f.RootCause)
	}
	f.Probe = "pod-to-pod"
	if err := f.Validate(); err != nil {
		t.Error(err)
	}
	sampled, ok := kube.SampledFinding(s)
	if !ok || sampled.Title != "Active probes sampled 20 of 101 Ready nodes; --max-nodes to change" || sampled.Status != model.StatusSkip {
		t.Errorf("sampled finding %v %q", ok, sampled.Title)
	}
	if _, ok := kube.NotReadyFinding(kube.SampleNodes(kubetest.SyntheticNodes(4, func(int) bool { return true }), 0, nil)); ok {
		t.Error("a nodes.not-ready finding for a cluster whose nodes are all Ready")
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 60000: "60,000", 1234567: "1,234,567", -2000: "-2,000"} {
		if got := kube.Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}
