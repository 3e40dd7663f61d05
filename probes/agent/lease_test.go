package agent

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/netsleuth/netsleuth/probes"
	k8s "github.com/netsleuth/netsleuth/probes/kube"
)

var t0 = time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)

func meta(ns, name, runID string, created time.Time) metav1.ObjectMeta {
	l := map[string]string{LabelManagedBy: ManagedBy}
	if runID != "" {
		l[LabelRunID] = runID
	}
	return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l, CreationTimestamp: metav1.NewTime(created)}
}

func lease(ns, runID string, renewed time.Time) coordinationv1.Lease {
	l := newLease(ns, runID, renewed)
	l.CreationTimestamp = metav1.NewTime(renewed.Add(-time.Hour))
	return *l
}

func TestClassify(t *testing.T) {
	now := t0
	deleted := metav1.NewTime(now.Add(-time.Minute))
	l := Listing{
		Namespaces: []corev1.Namespace{
			{ObjectMeta: meta("", "netsleuth-live", "live", now.Add(-time.Hour))},       // Lease renewed 5s ago
			{ObjectMeta: meta("", "netsleuth-expired", "expired", now.Add(-time.Hour))}, // Lease renewed 31s ago
			{ObjectMeta: meta("", "netsleuth-young", "young", now.Add(-5*time.Second))}, // no Lease yet, 5s old
			{ObjectMeta: meta("", "netsleuth-old", "old", now.Add(-time.Minute))},       // no Lease, 1 min old
			{ObjectMeta: meta("", "netsleuth-anon", "", now)},                           // no run ID at all
			{ObjectMeta: meta("", "netsleuth-mine", "mine", now.Add(-time.Hour))},       // the caller's own
			{ObjectMeta: func() metav1.ObjectMeta {
				m := meta("", "netsleuth-going", "going", now.Add(-time.Hour))
				m.DeletionTimestamp = &deleted
				return m
			}()},
		},
		Pods: []corev1.Pod{
			{ObjectMeta: meta("netsleuth-expired", "netsleuth-pod-n1-expired", "expired", now.Add(-time.Hour))},
			{ObjectMeta: meta("netsleuth-going", "netsleuth-pod-n1-going", "going", now.Add(-time.Hour))},
			{ObjectMeta: meta("netsleuth-live", "netsleuth-pod-n1-live", "live", now.Add(-time.Hour))},
			// Two runs sharing --agent-namespace team: one alive, one over.
			{ObjectMeta: meta("team", "netsleuth-pod-n1-live", "live", now.Add(-time.Hour))},
			{ObjectMeta: meta("team", "netsleuth-pod-n1-shared", "shared", now.Add(-time.Hour))},
			{ObjectMeta: meta("shop", "netsleuth-as-client-expired", "expired", now.Add(-time.Hour))},
		},
		Services: []corev1.Service{
			{ObjectMeta: meta("team", "netsleuth-svc-live", "live", now.Add(-time.Hour))},
			{ObjectMeta: meta("team", "netsleuth-svc-shared", "shared", now.Add(-time.Hour))},
		},
		Leases: []coordinationv1.Lease{
			lease("netsleuth-live", "live", now.Add(-5*time.Second)),
			lease("netsleuth-expired", "expired", now.Add(-31*time.Second)),
			lease("netsleuth-mine", "mine", now.Add(-time.Hour)),
			lease("team", "shared", now.Add(-2*time.Minute)),
		},
	}
	s := Classify(l, "mine", now)
	want := []string{
		"namespace/netsleuth-expired", "namespace/netsleuth-old", "namespace/netsleuth-anon",
		"pod/team/netsleuth-pod-n1-shared", "pod/shop/netsleuth-as-client-expired",
		"service/team/netsleuth-svc-shared",
		"lease/team/netsleuth-shared",
	}
	if !slices.Equal(s.Leftovers, want) {
		t.Errorf("leftovers\n got %q\nwant %q", s.Leftovers, want)
	}
	var live []string
	for _, r := range s.Live {
		live = append(live, r.ID+"@"+r.Namespace)
	}
	if strings.Join(live, " ") != "live@netsleuth-live young@" {
		t.Errorf("live runs: %v", live)
	}
	if r := s.Live[0]; !r.Expires.Equal(now.Add(25*time.Second)) || !strings.Contains(r.Holder, "netsleuth run live") {
		t.Errorf("live run %+v", r)
	}
	// The same cluster 30 s later: the live run stopped renewing (killed),
	// the young one never made a Lease.
	later := Classify(l, "mine", now.Add(LeaseDuration))
	for _, w := range []string{"namespace/netsleuth-live", "pod/team/netsleuth-pod-n1-live", "service/team/netsleuth-svc-live", "namespace/netsleuth-young"} {
		if !slices.Contains(later.Leftovers, w) {
			t.Errorf("30 s later %s is not a leftover: %v", w, later.Leftovers)
		}
	}
	if len(later.Live) != 0 {
		t.Errorf("30 s later still live: %+v", later.Live)
	}
	// Without an exception (the cleanup command) the caller's own run is
	// judged too: its Lease is an hour old.
	if all := Classify(l, "", now); !slices.Contains(all.Leftovers, "namespace/netsleuth-mine") {
		t.Errorf("cleanup does not judge every run: %v", all.Leftovers)
	}
}

// newRun starts a manager's pod agents on two nodes.
func newRun(t *testing.T, cs *fake.Clientset, runID, ns string) *Manager {
	t.Helper()
	m := NewManager(cs, nil, Config{RunID: runID, Image: "img", Namespace: ns, LeaseRenew: 20 * time.Millisecond})
	for _, a := range m.Start(context.Background(), probes.AgentPod, []string{"n1", "n2"}) {
		if a.Err != nil {
			t.Fatalf("run %s: %v", runID, a.Err)
		}
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

func podNames(t *testing.T, cs *fake.Clientset, ns string) []string {
	t.Helper()
	l, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range l.Items {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

func TestConcurrentRunsAreNotLeftovers(t *testing.T) {
	cs := fake.NewClientset()
	fakeKubelet(cs, "")
	ctx := context.Background()
	a := newRun(t, cs, "aaaa", "")
	b := newRun(t, cs, "bbbb", "")
	for _, m := range []*Manager{a, b} {
		if left, err := m.Leftovers(ctx, nil); err != nil || len(left) != 0 {
			t.Errorf("run %s sees leftovers of a live run: %v %v", m.cfg.RunID, left, err)
		}
	}
	s, err := Cleanup(ctx, cs, false)
	if err != nil || len(s.Leftovers) != 0 || len(s.Live) != 2 {
		t.Fatalf("cleanup during two live runs: %+v %v", s, err)
	}
	if got := podNames(t, cs, "netsleuth-aaaa"); len(got) != 2 {
		t.Errorf("cleanup deleted a live run's pods: %v", got)
	}
	// Run a ends cleanly: its Lease goes with it and b is the only live run.
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoordinationV1().Leases("netsleuth-aaaa").Get(ctx, LeaseName("aaaa"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("run a's Lease after Close: %v", err)
	}
	s, err = Find(ctx, cs, "")
	if err != nil || len(s.Live) != 1 || s.Live[0].ID != "bbbb" {
		t.Errorf("after a's Close: %+v %v", s, err)
	}
}

func TestLeaseIsRenewedWhileTheRunLives(t *testing.T) {
	cs := fake.NewClientset()
	fakeKubelet(cs, "")
	ctx := context.Background()
	m := newRun(t, cs, "cccc", "")
	first, err := cs.CoordinationV1().Leases("netsleuth-cccc").Get(ctx, LeaseName("cccc"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *first.Spec.LeaseDurationSeconds != 30 || first.Labels[LabelRunID] != "cccc" || first.Labels[LabelManagedBy] != ManagedBy {
		t.Errorf("lease %+v", first)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		cur, err := cs.CoordinationV1().Leases("netsleuth-cccc").Get(ctx, LeaseName("cccc"), metav1.GetOptions{})
		if err == nil && cur.Spec.RenewTime.After(first.Spec.RenewTime.Time) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Lease was not renewed in 5 s (every 20 ms): %v %+v", err, cur)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Deleted behind its back (an old netsleuth's cleanup, say), it comes back.
	if err := cs.CoordinationV1().Leases("netsleuth-cccc").Delete(ctx, LeaseName("cccc"), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := cs.CoordinationV1().Leases("netsleuth-cccc").Get(ctx, LeaseName("cccc"), metav1.GetOptions{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a deleted Lease was not recreated")
		}
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoordinationV1().Leases("netsleuth-cccc").Get(ctx, LeaseName("cccc"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Lease after Close: %v", err)
	}
}

func TestSharedAgentNamespace(t *testing.T) {
	team := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}
	svc := func(run string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "netsleuth-svc-" + run,
			Labels: map[string]string{LabelManagedBy: ManagedBy, LabelRunID: run}}}
	}
	cs := fake.NewClientset(team, svc("aaaa"), svc("bbbb"))
	fakeKubelet(cs, "")
	ctx := context.Background()
	a := newRun(t, cs, "aaaa", "team")
	newRun(t, cs, "bbbb", "team")
	want := []string{"netsleuth-pod-n1-aaaa", "netsleuth-pod-n1-bbbb", "netsleuth-pod-n2-aaaa", "netsleuth-pod-n2-bbbb"}
	if got := podNames(t, cs, "team"); !slices.Equal(got, want) {
		t.Fatalf("two runs in one namespace share pods: %v", got)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := podNames(t, cs, "team"); !slices.Equal(got, []string{"netsleuth-pod-n1-bbbb", "netsleuth-pod-n2-bbbb"}) {
		t.Errorf("a's Close left the wrong pods: %v", got)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "team", metav1.GetOptions{}); err != nil {
		t.Errorf("Close deleted the namespace the user chose: %v", err)
	}
	if _, err := cs.CoreV1().Services("team").Get(ctx, "netsleuth-svc-bbbb", metav1.GetOptions{}); err != nil {
		t.Errorf("a's Close deleted b's Service: %v", err)
	}
	if _, err := cs.CoreV1().Services("team").Get(ctx, "netsleuth-svc-aaaa", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a's Service after its Close: %v", err)
	}
	leases, _ := cs.CoordinationV1().Leases("team").List(ctx, metav1.ListOptions{})
	if len(leases.Items) != 1 || leases.Items[0].Name != LeaseName("bbbb") {
		t.Errorf("leases in team after a's Close: %+v", leases.Items)
	}
}

func TestCleanupDeletesOnlyRunsThatAreOver(t *testing.T) {
	expired := lease("team", "dead", time.Now().Add(-time.Minute))
	cs := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}},
		&corev1.Pod{ObjectMeta: meta("team", "netsleuth-pod-n1-dead", "dead", time.Now().Add(-time.Hour))},
		&expired,
	)
	fakeKubelet(cs, "")
	ctx := context.Background()
	newRun(t, cs, "live", "team")
	s, err := Cleanup(ctx, cs, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.Leftovers, " ") != "pod/team/netsleuth-pod-n1-dead lease/team/netsleuth-dead" || len(s.Live) != 1 || s.Live[0].ID != "live" {
		t.Errorf("cleanup: %+v", s)
	}
	if got := podNames(t, cs, "team"); !slices.Equal(got, []string{"netsleuth-pod-n1-live", "netsleuth-pod-n2-live"}) {
		t.Errorf("after cleanup: %v", got)
	}
	if _, err := cs.CoordinationV1().Leases("team").Get(ctx, LeaseName("dead"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the dead run's Lease: %v", err)
	}
}

func TestLeaseForbidden(t *testing.T) {
	cs := fake.NewClientset()
	fakeKubelet(cs, "")
	cs.PrependReactor("create", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "", nil)
	})
	var mu sync.Mutex
	var writes []string
	cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetVerb() != "list" && a.GetVerb() != "watch" && a.GetVerb() != "get" {
			mu.Lock()
			writes = append(writes, a.GetVerb()+" "+a.GetResource().Resource)
			mu.Unlock()
		}
		return false, nil, nil
	})
	m := NewManager(cs, nil, Config{RunID: "r", Image: "img", Namespace: "team"})
	a := m.Start(context.Background(), probes.AgentPod, []string{"n1"})[0]
	ok, failed, err := Started([]probes.Agent{a})
	if !apierrors.IsForbidden(err) || len(ok)+len(failed) != 0 || !strings.Contains(err.Error(), "Lease team/netsleuth-r") {
		t.Fatalf("a refused Lease must be the run's RBAC error: %v (%v, %v)", err, ok, failed)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(writes, []string{"create leases"}) {
		t.Errorf("with its Lease refused the run may only have tried that: %v", writes)
	}
}

func TestRunString(t *testing.T) {
	r := leaseRun(lease("team", "abcd", time.Now().Add(-4*time.Second)))
	if s := r.String(); !strings.Contains(s, "Lease team/netsleuth-abcd held by netsleuth run abcd (pid") ||
		!strings.Contains(s, "renewed 4s ago, expires in 26s") {
		t.Errorf("%s", s)
	}
	if s := (Run{ID: "abcd"}).String(); !strings.Contains(s, "starting") {
		t.Errorf("%s", s)
	}
}

func TestCloseDeletesTheLeaseEvenWhenPodsStay(t *testing.T) {
	cs := fake.NewClientset()
	fakeKubelet(cs, "")
	ctx := context.Background()
	// Installed before the run starts: the fake's reactor chain is not safe
	// to change while the Lease renews.
	var failDeletes atomic.Bool
	cs.PrependReactor("delete-collection", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if !failDeletes.Load() {
			return false, nil, nil
		}
		return true, nil, apierrors.NewServiceUnavailable("the API server is restarting")
	})
	m := newRun(t, cs, "dddd", "")
	failDeletes.Store(true)
	defer failDeletes.Store(false) // the API server is back for newRun's own Close
	// Close tries an unanswered delete again until its context ends (a run
	// gives it DefaultReleaseTimeout).
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := m.Close(cctx); err == nil || !strings.Contains(err.Error(), "deleting the agent pods") {
		t.Fatalf("Close: %v", err)
	}
	if _, err := cs.CoordinationV1().Leases("netsleuth-dddd").Get(ctx, LeaseName("dddd"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Lease of a run that is over must go, so cleanup may take what it left: %v", err)
	}
	s, err := Find(ctx, cs, "")
	if err != nil || len(s.Live) != 0 || !slices.Contains(s.Leftovers, "pod/netsleuth-dddd/netsleuth-pod-n1-dddd") && !slices.Contains(s.Leftovers, "namespace/netsleuth-dddd") {
		t.Errorf("after a failed Close: %+v %v", s, err)
	}
}

// lists counts the list requests cs has served since mark.
func lists(cs *fake.Clientset, mark int) map[string]int {
	out := map[string]int{}
	for _, a := range cs.Actions()[mark:] {
		if a.GetVerb() == "list" {
			out[a.GetResource().Resource]++
		}
	}
	return out
}

// TestFindInReadsTheRunsLists: when the run's other probes have listed every
// namespace, pod and Service, the leftovers check lists only the Leases; a
// run that ended after those lists were read is not taken for debris, and a
// dead run's objects still are, judged from a fresh read.
func TestFindInReadsTheRunsLists(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	fakeKubelet(cs, "")
	a := newRun(t, cs, "aaaa", "")
	newRun(t, cs, "bbbb", "")

	// Nothing read yet: FindIn lists for itself, as Find does.
	mark := len(cs.Actions())
	if s, err := FindIn(ctx, cs, "bbbb", k8s.NewSnapshot(cs, "")); err != nil || len(s.Leftovers) != 0 {
		t.Fatalf("FindIn with an empty snapshot: %+v %v", s, err)
	}
	if got := lists(cs, mark); len(got) != 4 {
		t.Errorf("FindIn with an empty snapshot listed %v, want all four kinds", got)
	}

	// The run's probes read every namespace, pod and Service; then run a
	// ends cleanly. Its objects are still in those lists, its Lease is gone.
	snap := k8s.NewSnapshot(cs, "")
	if _, err := snap.Namespaces(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Pods(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Services(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mark = len(cs.Actions())
	s, err := FindIn(ctx, cs, "bbbb", snap)
	if err != nil || len(s.Leftovers) != 0 {
		t.Fatalf("a run that ended cleanly after the snapshot was read is debris: %+v %v", s, err)
	}
	if got := lists(cs, mark); got["leases"] < 1 {
		t.Errorf("the leftovers check did not list the Leases: %v", got)
	}

	// With only b alive and nothing else labelled, one list (the Leases) is
	// all the check costs.
	snap = k8s.NewSnapshot(cs, "")
	_, _ = snap.Namespaces(ctx)
	_, _ = snap.Pods(ctx, "")
	_, _ = snap.Services(ctx, "")
	mark = len(cs.Actions())
	if s, err := FindIn(ctx, cs, "bbbb", snap); err != nil || len(s.Leftovers) != 0 || len(s.Live) != 0 {
		t.Fatalf("b alone: %+v %v", s, err)
	}
	if got := lists(cs, mark); len(got) != 1 || got["leases"] != 1 {
		t.Errorf("b alone: listed %v, want the Leases once", got)
	}

	// A dead run's pod (no Lease, older than LeaseDuration) is reported.
	old := metav1.NewTime(time.Now().Add(-2 * LeaseDuration))
	if _, err := cs.CoreV1().Pods("team").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stray", Namespace: "team", CreationTimestamp: old,
		Labels: map[string]string{LabelManagedBy: ManagedBy, LabelRunID: "dead"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	snap = k8s.NewSnapshot(cs, "")
	_, _ = snap.Namespaces(ctx)
	_, _ = snap.Pods(ctx, "")
	_, _ = snap.Services(ctx, "")
	if s, err := FindIn(ctx, cs, "bbbb", snap); err != nil || !slices.Equal(s.Leftovers, []string{"pod/team/stray"}) {
		t.Fatalf("a dead run's pod: %+v %v", s, err)
	}
}
