//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// concurrentRuns starts n default active suites within 3 s (run B 3 s after
// run A, as in the issue; five runs 750 ms apart), each while the earlier
// ones' agents run, and checks that no run reports
// another as leftovers, every run cleans up after itself, and nothing is
// left. extra flags go to every run.
func concurrentRuns(t *testing.T, n int, extra ...string) {
	exclusive(t)
	assertNothingLeft(t)
	runs := make([]*runProc, n)
	for i := range runs {
		if i > 0 {
			time.Sleep(3 * time.Second / time.Duration(n-1))
		}
		runs[i] = startCheck(t, kubeconfig, fmt.Sprintf("e2ec%d%d", n, i), extra...)
	}
	for _, p := range runs {
		code := p.wait(t, 4*time.Minute)
		r := p.report(t)
		if code != 0 {
			// Several suites at once load a small lab: a slow answer is the
			// lab's, not a sign that the runs disturbed each other (which
			// assertCleanRun checks); say so without failing.
			t.Logf("run %s: exit %d (%+v)", p.id, code, r.Summary)
			for _, f := range r.Findings {
				if f.Status.Failing() {
					t.Logf("  %s %s: %s", f.ID, f.Status, f.Title)
				}
			}
		}
		assertCleanRun(t, p, r)
		t.Logf("run %s: %s, exit %d, %d findings", p.id, time.Since(p.started).Round(100*time.Millisecond), code, len(r.Findings))
	}
	assertNothingLeft(t)
}

// TestConcurrentRunsTwo: two runs at once (two engineers, two CI jobs) do
// not see each other as debris.
func TestConcurrentRunsTwo(t *testing.T) { concurrentRuns(t, 2) }

// TestConcurrentRunsFive: five runs at once, the same.
func TestConcurrentRunsFive(t *testing.T) { concurrentRuns(t, 5) }

// TestConcurrentRunsSharedAgentNamespace: three runs with one
// --agent-namespace: each has pods of its own (their names carry the run
// ID), none deletes another's, and the namespace the user chose survives
// them all.
func TestConcurrentRunsSharedAgentNamespace(t *testing.T) {
	ns := namespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "privileged"})
	concurrentRuns(t, 3, "--agent-namespace", ns)
	ctx := ctxT(t, 20*time.Second)
	if _, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Errorf("the runs deleted the namespace the user chose: %v", err)
	}
}

// TestCleanupDuringLiveRun: `netsleuth cleanup` while a run's agents are up
// leaves them alone and says it skipped one live run; the run completes
// clean.
func TestCleanupDuringLiveRun(t *testing.T) {
	exclusive(t)
	assertNothingLeft(t)
	p := startCheck(t, kubeconfig, "e2elive")
	ctx := ctxT(t, 2*time.Minute)
	var before []string
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: runIDLabel + "=e2elive"})
		if err != nil || len(pods.Items) == 0 || p.exited() {
			return p.exited(), nil
		}
		before, _ = runObjects(ctx, "e2elive")
		return true, nil
	})
	if err != nil || len(before) == 0 {
		t.Fatalf("the run's agents never appeared (%v)\nstderr: %s", err, p.errOut.String())
	}
	stdout, stderr, code := netsleuthCmd(t, "cleanup", "--kubeconfig", kubeconfig)
	if code != 0 || !strings.Contains(stdout, "skipped 1 live run") || !strings.Contains(stdout, "run e2elive (Lease ") ||
		strings.Contains(stdout, "deleted ") {
		t.Errorf("cleanup during a live run: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("cleanup during the run:\n%s", stdout)
	code = p.wait(t, 3*time.Minute)
	r := p.report(t)
	if code != 0 {
		t.Errorf("the run cleanup ran beside: exit %d (%+v)\nstderr: %s", code, r.Summary, p.errOut.String())
	}
	assertCleanRun(t, p, r)
	for _, f := range r.Findings {
		if f.Status.Failing() {
			t.Errorf("the run cleanup ran beside: %s %s: %s %v", f.ID, f.Status, f.Title, f.Evidence)
		}
	}
	assertNothingLeft(t)
}
