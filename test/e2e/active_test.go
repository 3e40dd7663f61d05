//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/netsleuth/netsleuth/model"
)

// agentFlags make the run use the agent image the lab built from this checkout.
var agentFlags = []string{"--agent-image", "netsleuth.local/netsleuth:dev", "--agent-pull-policy", "Never"}

const (
	extTarget  = "192.168.2.10:80"
	extSubject = "Node/nsl-node1 -> " + extTarget
	managedSel = "app.kubernetes.io/managed-by=netsleuth"
)

func active(t *testing.T, args ...string) (*model.Report, int) {
	t.Helper()
	r, code := check(t, append(append([]string{}, agentFlags...), args...)...)
	assertNothingLeft(t)
	return r, code
}

// assertNothingLeft fails when a namespace, pod, service or Lease netsleuth
// made survives the run that made it. A run deletes its namespace without
// waiting for the namespace controller, so it gets 30 s to be gone.
func assertNothingLeft(t *testing.T) {
	t.Helper()
	if left := leftBehind(t, managedSel); len(left) > 0 {
		t.Errorf("netsleuth left objects behind: %s", strings.Join(left, ", "))
	}
}

// leftBehind lists what of sel is still there after 30 s (see labelled).
func leftBehind(t *testing.T, sel string) []string {
	t.Helper()
	ctx := ctxT(t, 40*time.Second)
	var left []string
	_ = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		left, err = labelled(ctx, sel)
		return err == nil && len(left) == 0, nil
	})
	return left
}

// namespacesGone waits until no namespace netsleuth created is left, not
// even one being deleted.
func namespacesGone(ctx context.Context) error {
	var left []string
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		nss, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: managedSel})
		if err != nil {
			return false, nil
		}
		left = left[:0]
		for _, n := range nss.Items {
			left = append(left, n.Name)
		}
		return len(left) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("netsleuth's namespaces %v are still there: %w", left, err)
	}
	return nil
}

func TestActiveHealthy(t *testing.T) {
	exclusive(t)
	r, code := active(t, "--probe", "pod-to-pod", "--probe", "external", "--target", extTarget)
	find(t, r, want{id: "pod-to-pod.ok", status: "pass"})
	find(t, r, want{id: "external.ok", status: "pass", subject: extSubject})
	find(t, r, want{id: "external.ok", status: "pass", subject: "Node/nsl-node2 -> " + extTarget})
	if code != 0 {
		t.Errorf("exit %d on a healthy lab: %+v", code, r.Summary)
	}
}

// TestActiveInterrupted sends SIGINT while the agents exist and checks the
// run deletes them before it exits.
func TestActiveInterrupted(t *testing.T) {
	exclusive(t)
	cmd := exec.Command(netsleuth, append([]string{"check", "-o", "json", "--kubeconfig", kubeconfig, "--probe", "pod-to-pod"}, agentFlags...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 60*time.Second)
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: managedSel})
		return err == nil && len(pods.Items) > 0, nil
	})
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("no agent pod appeared: %v\n%s", err, out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("netsleuth did not exit after SIGINT:\n%s", out.String())
	}
	assertNothingLeft(t)
}

// TestActiveCleanup leaves objects as a killed run would (its namespace,
// and its Lease last renewed two minutes ago), checks the next run notices
// them and `netsleuth cleanup` removes them.
func TestActiveCleanup(t *testing.T) {
	exclusive(t)
	ctx := ctxT(t, 2*time.Minute)
	dead := map[string]string{"app.kubernetes.io/managed-by": "netsleuth", runIDLabel: "e2edead"}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "netsleuth-e2edead", Labels: dead}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	renewed := metav1.NewMicroTime(time.Now().Add(-2 * time.Minute))
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "netsleuth-e2edead", Namespace: ns.Name, Labels: dead},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("a killed run"), LeaseDurationSeconds: ptr.To[int32](30), RenewTime: &renewed}}
	if _, err := kube.CoordinationV1().Leases(ns.Name).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r, _ := check(t, append([]string{"--probe", "pod-to-pod"}, agentFlags...)...)
	f := find(t, r, want{id: "pod-to-pod.leftovers", status: "warn", fix: "netsleuth cleanup"})
	if !strings.Contains(strings.Join(f.Evidence, " "), "namespace/netsleuth-e2edead") {
		t.Errorf("leftover evidence: %v", f.Evidence)
	}
	stdout, stderr, code := netsleuthCmd(t, "cleanup", "--kubeconfig", kubeconfig)
	if code != 0 || !strings.Contains(stdout, "deleted namespace/netsleuth-e2edead") {
		t.Fatalf("cleanup: exit %d\n%s%s", code, stdout, stderr)
	}
	assertNothingLeft(t)
}

// TestActiveAgentImageMissing: an image the nodes do not have becomes an
// error finding naming the reason, quickly, and nothing is left behind.
func TestActiveAgentImageMissing(t *testing.T) {
	start := time.Now()
	r, code := check(t, "--probe", "pod-to-pod", "--agent-image", "netsleuth.local/absent:none", "--agent-pull-policy", "Never")
	f := find(t, r, want{id: "pod-to-pod.agent-not-started", status: "error", subject: "Node/nsl-node1", fix: "--agent-image"})
	if !strings.Contains(strings.Join(f.Evidence, " "), "ErrImageNeverPull") {
		t.Errorf("evidence does not name ErrImageNeverPull: %v", f.Evidence)
	}
	if code != 1 || time.Since(start) > 40*time.Second {
		t.Errorf("exit %d after %s", code, time.Since(start))
	}
	assertNothingLeft(t)
}
