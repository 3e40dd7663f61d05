package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

type recordingApplier struct {
	mu      sync.Mutex
	applied []Ruleset
}

func (r *recordingApplier) Apply(_ context.Context, rs Ruleset) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = append(r.applied, rs)
	return false, nil
}

func (r *recordingApplier) last() (Ruleset, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.applied) == 0 {
		return Ruleset{}, 0
	}
	return r.applied[len(r.applied)-1], len(r.applied)
}

// TestControllerReactsToChanges drives the informer loop with a fake client:
// initial apply, then a new policy is picked up after the debounce.
func TestControllerReactsToChanges(t *testing.T) {
	web := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: "node1"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "10.244.1.10"}}},
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	cs := fake.NewClientset(web, ns)
	rec := &recordingApplier{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := newController(cs, "node1", testPrefix, time.Hour, rec, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.start(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.run(ctx) }()

	waitFor := func(what string, ok func(Ruleset) bool) {
		t.Helper()
		for ctx.Err() == nil {
			if rs, n := rec.last(); n > 0 && ok(rs) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	waitFor("initial apply", func(rs Ruleset) bool { return rs.Stats.IngressIsolated == 0 })

	deny := pol("default", "deny", networkingv1.NetworkPolicySpec{})
	if _, err := cs.NetworkingV1().NetworkPolicies("default").Create(ctx, &deny, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("isolation of default/web", func(rs Ruleset) bool {
		return rs.Stats.IngressIsolated == 1 && strings.Contains(strings.Join(rs.Rules, "\n"), "-d 10.244.1.10/32")
	})
	_, n := rec.last()
	time.Sleep(3 * debounceDelay)
	if _, m := rec.last(); m != n {
		t.Errorf("unchanged state re-applied without resync: %d -> %d applies", n, m)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v", err)
	}
}
