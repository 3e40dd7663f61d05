package probes

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
)

// TestAgentNodesOnceForTwoThousandNodes: 2,000 nodes, 1,900 NotReady; every
// probe asking gets one sample, from one list of the nodes, holding the
// Ready node the --from pod runs on.
func TestAgentNodesOnceForTwoThousandNodes(t *testing.T) {
	nodes := kubetest.SyntheticNodes(2000, func(i int) bool { return i%20 == 0 })
	objs := make([]runtime.Object, 0, len(nodes)+1)
	for i := range nodes {
		objs = append(objs, &nodes[i])
	}
	objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"}, Spec: corev1.PodSpec{NodeName: "node-1220"}})
	c := fake.NewClientset(objs...)
	env := &Env{Kube: c, Options: Options{From: "shop/web-1", To: "shop/db-0:5432/tcp", MaxNodes: 20}}
	ctx := context.Background()
	s, err := env.AgentNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := env.AgentNodes(ctx)
	if err != nil || !slices.Equal(again.Names(), s.Names()) {
		t.Fatalf("second call: %v %v", again.Names(), err)
	}
	lists := 0
	for _, a := range c.Actions() {
		if a.GetVerb() == "list" && a.GetResource().Resource == "nodes" {
			lists++
		}
	}
	if lists != 1 {
		t.Errorf("%d node lists for two calls, want 1", lists)
	}
	if len(s.Nodes) != 20 || s.Ready != 100 || len(s.NotReady) != 1900 || !slices.Equal(s.Pinned, []string{"node-1220"}) {
		t.Errorf("sample %d nodes of %d Ready, %d NotReady, pinned %v; want 20 of 100, 1900, [node-1220]", len(s.Nodes), s.Ready, len(s.NotReady), s.Pinned)
	}
}

// TestCoverageIsOneGroupAcrossProbes: three probes leave the same 1,900
// NotReady nodes out; the report has one nodes.not-ready and one
// nodes.sampled finding, and each probe's nodes-skipped is its symptom.
func TestCoverageIsOneGroupAcrossProbes(t *testing.T) {
	s := kube.SampleNodes(kubetest.SyntheticNodes(2000, func(i int) bool { return i%20 == 0 }), 20, nil)
	var all []model.Finding
	for _, p := range []string{"pod-to-pod", "dns", "node-sysctl"} {
		for _, f := range Coverage(p, s) {
			f.Probe = p
			all = append(all, f)
		}
	}
	r := model.NewReport(model.Cluster{}, time.Now())
	for _, f := range Merge(all) {
		r.Add(f)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 5 {
		t.Fatalf("%d findings, want nodes.sampled, nodes.not-ready and 3 symptoms", len(r.Findings))
	}
	syms := r.Symptoms(model.KeyOf(kube.IDNodesNotReady, kube.NodesSubject, ""))
	if len(syms) != 3 || syms[0].ID != "pod-to-pod.nodes-skipped" || syms[0].Status != model.StatusWarn {
		t.Errorf("symptoms of nodes.not-ready: %+v", syms)
	}
	if r.Summary.RootCauses != 1 || r.Summary.Symptoms != 3 {
		t.Errorf("summary %+v, want 1 root cause and 3 symptoms", r.Summary)
	}
	if got := Coverage("dns", kube.SampleNodes(kubetest.SyntheticNodes(3, func(int) bool { return true }), 20, nil)); len(got) != 0 {
		t.Errorf("a fully covered healthy cluster gave %d coverage findings", len(got))
	}
}

func TestPodRef(t *testing.T) {
	for in, want := range map[string]string{"shop/web-1": "shop/web-1", "shop/db-0:5432/tcp": "shop/db-0", "shop/db-0:5432": "shop/db-0",
		"shop/*": "", "10.0.0.1": "", "10.0.0.0/24:80": "", "": "", "a/b/c": ""} {
		ns, name, ok := PodRef(in)
		got := ""
		if ok {
			got = ns + "/" + name
		}
		if got != want {
			t.Errorf("PodRef(%q) = %q, want %q", in, got, want)
		}
	}
}
