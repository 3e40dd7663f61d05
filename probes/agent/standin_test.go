package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes/fake"
	psapi "k8s.io/pod-security-admission/api"
	pspolicy "k8s.io/pod-security-admission/policy"

	"github.com/netsleuth/netsleuth/probes"
)

var client = StandInFor{Namespace: "shop", Pod: "client-7d9f", Node: "n2", Labels: map[string]string{"run": "client", "pod-template-hash": "7d9f"}}

// restricted fails t when the pod spec breaks PodSecurity "restricted", as
// the admission plugin's own checks judge it.
func restricted(t *testing.T, meta *metav1.ObjectMeta, spec *corev1.PodSpec) {
	t.Helper()
	ev, err := pspolicy.NewEvaluator(pspolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ev.EvaluatePod(psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}, meta, spec) {
		if !r.Allowed {
			t.Errorf("PodSecurity restricted: %s: %s", r.ForbiddenReason, r.ForbiddenDetail)
		}
	}
}

func TestStandInPod(t *testing.T) {
	m := NewManager(fake.NewClientset(), nil, Config{RunID: "r1", Image: "img"})
	owner := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "netsleuth-r1", UID: "u1"}}
	p := m.StandInPod(client, owner)
	if p.Namespace != "shop" || p.Spec.NodeName != "n2" || p.Spec.HostNetwork {
		t.Errorf("stand-in not in the source's namespace and node: ns %s node %s", p.Namespace, p.Spec.NodeName)
	}
	for k, v := range client.Labels {
		if p.Labels[k] != v {
			t.Errorf("label %s=%s missing: %v", k, v, p.Labels)
		}
	}
	if !klabels.SelectorFromSet(klabels.Set{"run": "client"}).Matches(klabels.Set(p.Labels)) {
		t.Error("a selector of the source does not select the stand-in")
	}
	sel, _ := klabels.Parse(StandInSelector("r1"))
	if !sel.Matches(klabels.Set(p.Labels)) || !strings.Contains(Selector, LabelManagedBy) || p.Labels[LabelManagedBy] != ManagedBy {
		t.Errorf("stand-in cleanup and `netsleuth cleanup` selectors do not match its labels %v", p.Labels)
	}
	if len(p.Labels) != len(client.Labels)+len(AddedLabelKeys()) {
		t.Errorf("labels beyond the source's and netsleuth's: %v", p.Labels)
	}
	c := p.Spec.Containers[0]
	rp := c.ReadinessProbe
	if rp == nil || rp.TCPSocket == nil || rp.TCPSocket.Port.IntValue() != NeverReadyPort || len(c.Ports) != 0 || !strings.Contains(strings.Join(c.Command, " "), "--listen=false") {
		t.Errorf("stand-in must open no port and probe a closed one for readiness: %+v %v %v", rp, c.Ports, c.Command)
	}
	if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Kind != "Namespace" || !*p.OwnerReferences[0].Controller || p.OwnerReferences[0].UID != "u1" {
		t.Errorf("stand-in needs a controller reference so no ReplicaSet adopts it: %+v", p.OwnerReferences)
	}
	if len(p.Name) > 63 || !strings.HasSuffix(p.Name, "-r1") {
		t.Errorf("name %q", p.Name)
	}
	restricted(t, &p.ObjectMeta, &p.Spec)
	long := standInName("r1", strings.Repeat("a-very-long-pod-name-", 5))
	if len(long) > 63 || !strings.HasSuffix(long, "-r1") {
		t.Errorf("long name %q (%d)", long, len(long))
	}
}

func TestEphemeralContainerRestricted(t *testing.T) {
	m := NewManager(fake.NewClientset(), nil, Config{RunID: "r1", Image: "img"})
	ec := m.EphemeralContainer(90 * time.Second)
	// The user's pod has no securityContext of its own: the container must
	// meet "restricted" alone.
	spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app",
		SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: new(bool), RunAsNonRoot: ptrTrue(),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}}},
		EphemeralContainers: []corev1.EphemeralContainer{ec}}
	restricted(t, &metav1.ObjectMeta{Name: "client"}, spec)
	if !strings.Contains(strings.Join(ec.Command, " "), "--exit-after=1m30s") || ec.Name != "netsleuth-r1" {
		t.Errorf("ephemeral container: %s %v", ec.Name, ec.Command)
	}
	if got := m.containerFor(probes.Agent{Kind: AgentEphemeral}); got != "netsleuth-r1" {
		t.Errorf("exec container for ephemeral agent: %s", got)
	}
	if got := m.containerFor(probes.Agent{Kind: AgentStandIn}); got != containerName {
		t.Errorf("exec container for stand-in: %s", got)
	}
}

func ptrTrue() *bool { b := true; return &b }

func TestStartStandInAndDelete(t *testing.T) {
	cs := fake.NewClientset(
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "client-7d9f", Labels: client.Labels}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "other", Labels: map[string]string{LabelManagedBy: ManagedBy, LabelRunID: "r0", LabelKind: "standin"}}})
	fakeKubelet(cs, "")
	m := NewManager(cs, nil, Config{RunID: "r1", Image: "img"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := m.StartStandIn(ctx, client)
	if a.Err != nil || a.IP != "10.244.0.9" || a.Namespace != "shop" || a.Kind != AgentStandIn {
		t.Fatalf("stand-in: %+v", a)
	}
	p, err := cs.CoreV1().Pods("shop").Get(ctx, a.Pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := cs.CoreV1().Namespaces().Get(ctx, "netsleuth-r1", metav1.GetOptions{})
	if p.OwnerReferences[0].UID != owner.UID || owner.Name != "netsleuth-r1" {
		t.Errorf("owner %+v, namespace %+v", p.OwnerReferences, owner.ObjectMeta)
	}
	found, err := Find(ctx, cs, "")
	if err != nil || len(found.Live) != 1 || found.Live[0].ID != "r1" || strings.Join(found.Leftovers, " ") != "pod/shop/other" {
		t.Errorf("while run r1 lives, `netsleuth cleanup` must leave its stand-in alone and see r0's: %+v %v", found, err)
	}
	l, err := List(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	if later := Classify(l, "", time.Now().Add(LeaseDuration+time.Second)); !strings.Contains(strings.Join(later.Leftovers, " "), "pod/shop/"+a.Pod) {
		t.Errorf("once run r1's Lease has expired, `netsleuth cleanup` does not find the stand-in: %v", later.Leftovers)
	}
	if err := DeleteStandIns(ctx, cs, "shop", "r1"); err != nil {
		t.Fatal(err)
	}
	left, _ := cs.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{})
	var names []string
	for _, p := range left.Items {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "client-7d9f,other" {
		t.Errorf("DeleteStandIns must delete this run's stand-ins only, left %v", names)
	}
}

// TestCloseDeletesStandIns: two probes asking for the same source share one
// stand-in, which lives until the run closes and is then deleted; the
// user's pods stay.
func TestCloseDeletesStandIns(t *testing.T) {
	cs := fake.NewClientset(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "client-7d9f", Labels: client.Labels}})
	fakeKubelet(cs, "")
	m := NewManager(cs, nil, Config{RunID: "r1", Image: "img"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, b := m.StartStandIn(ctx, client), m.StartStandIn(ctx, client)
	if a.Err != nil || b.Err != nil || a.Pod != b.Pod {
		t.Fatalf("two probes asking for one source: %+v and %+v", a, b)
	}
	if l, _ := cs.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: StandInSelector("r1")}); len(l.Items) != 1 {
		t.Fatalf("want one stand-in, got %d", len(l.Items))
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	left, _ := cs.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{})
	if len(left.Items) != 1 || left.Items[0].Name != "client-7d9f" {
		t.Errorf("after Close, want only the user's pod in shop, got %+v", left.Items)
	}
}
