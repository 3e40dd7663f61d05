//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/netsleuth/netsleuth/model"
)

// faultNode is the node whose agent the mid-run faults take away.
const faultNode = "nsl-node2"

// TestMidRunFaults: the cluster fails under a live run — the API server
// restarted, an agent pod deleted, a node's kubelet stopped (the node goes
// NotReady), an agent's exec process killed mid-request. Each run still
// finishes (exit 1, no hang), reports what happened as an error finding
// naming the node or the API server, and deletes everything it made; the
// lab is healthy again after each.
//
// The runs are pod-to-pod then pod-to-service, one probe at a time, so the
// agents pod-to-pod starts are still needed by pod-to-service after the
// fault: the fault is injected once the run's agent on nsl-node2 runs.
func TestMidRunFaults(t *testing.T) {
	exclusive(t)
	for _, c := range []struct {
		name   string
		inject func(t *testing.T, p *runProc, pod *corev1.Pod)
		ids    []string // one of these finding IDs
		text   []string // in that finding's title, root cause, evidence or fixes
		// rideOut: the run may outlast the fault without an error (every
		// finding passes); when it does report the fault, every other
		// failing finding must be a symptom of it.
		rideOut bool
	}{{
		name: "apiserver-restart",
		inject: func(t *testing.T, _ *runProc, _ *corev1.Pod) {
			lab(t, "fault", "apiserver-restart")
			lab(t, "unfault", "apiserver-restart")
		},
		ids:     []string{"runner.api-unreachable", "agent.api-unreachable"},
		text:    []string{"API server", "kubectl get --raw /readyz"},
		rideOut: true,
	}, {
		name: "pod-deleted",
		inject: func(t *testing.T, _ *runProc, pod *corev1.Pod) {
			err := kube.CoreV1().Pods(pod.Namespace).Delete(ctxT(t, 30*time.Second), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
			if err != nil {
				t.Fatal(err)
			}
		},
		ids:  []string{"runner.agent-lost"},
		text: []string{"node " + faultNode, "was deleted while the run used it", "PodDeleted"},
	}, {
		name: "node-notready",
		inject: func(t *testing.T, _ *runProc, _ *corev1.Pod) {
			// withFault would take the fault lock again: the test holds it.
			lab(t, "fault", "kubelet-stop", "--node", faultNode)
			t.Cleanup(func() {
				if out, err := labCmd("unfault", "kubelet-stop"); err != nil {
					t.Errorf("unfault kubelet-stop: %v\n%s", err, out)
				}
			})
		},
		ids:  []string{"runner.agent-lost"},
		text: []string{"node " + faultNode, "kubelet", "kubectl describe node " + faultNode},
	}, {
		name: "exec-cut",
		inject: func(t *testing.T, p *runProc, _ *corev1.Pod) {
			go killAgentExecs(t, p)
		},
		ids:  []string{"runner.agent-lost"},
		text: []string{"node " + faultNode, "exec process was killed by signal 9", "ExecKilled"},
	}} {
		t.Run(c.name, func(t *testing.T) {
			// A run may be done before the fault reaches it (the agent runs,
			// and its last answers are in while the fault is injected): then
			// it is tried again, up to three times.
			var (
				id, start = "", time.Now()
				p         *runProc
				code      int
				r         *model.Report
			)
			for attempt := 1; ; attempt++ {
				assertNothingLeft(t)
				id, start = "e2emf"+strconv.Itoa(int(time.Now().UnixNano()%1e6)), time.Now()
				p = startCheck(t, kubeconfig, id, "--probe", "pod-to-pod", "--probe", "pod-to-service", "--parallel", "1")
				pod := waitAgentRunning(t, p, faultNode)
				t.Logf("run %s: agent %s runs on %s after %s: injecting %s", id, pod.Name, faultNode, time.Since(start).Round(100*time.Millisecond), c.name)
				c.inject(t, p, pod)
				code = p.wait(t, 3*time.Minute)
				r = p.report(t)
				t.Logf("run %s: exit %d after %s", id, code, time.Since(start).Round(100*time.Millisecond))
				if code != 0 || r.Summary.Fail+r.Summary.Error > 0 {
					break
				}
				if c.rideOut {
					t.Logf("run %s rode out %s: every finding passes", id, c.name)
					assertNothingLeft(t)
					return
				}
				if attempt == 3 {
					t.Fatalf("three runs in a row were done before %s reached them", c.name)
				}
				t.Logf("run %s was done before %s reached it: again", id, c.name)
			}
			if code != 1 {
				t.Errorf("exit %d, want 1 (an error finding)", code)
			}
			f, ok := findAny(r, c.ids)
			if !ok {
				t.Fatalf("no finding %v; findings:\n%s\nstderr: %s", c.ids, findingLines(r), p.errOut.String())
			}
			if c.rideOut {
				assertSymptomsOf(t, r, c.ids)
			}
			t.Logf("%s (%s): %s\n  root cause: %s\n  evidence: %s", f.ID, f.Probe, f.Title, f.RootCause, strings.Join(f.Evidence, " | "))
			if f.Status != model.StatusError {
				t.Errorf("%s is %s, want error", f.ID, f.Status)
			}
			all := findingText(f)
			for _, w := range c.text {
				if !strings.Contains(all, w) {
					t.Errorf("%s does not say %q:\n%s", f.ID, w, all)
				}
			}
			if strings.Contains(p.errOut.String(), "could not delete the agents") {
				t.Errorf("cleanup failed: %s", p.errOut.String())
			}
			if left, err := runObjects(ctxT(t, 10*time.Second), id); err != nil || hasPods(left) {
				t.Errorf("run %s exited with its pods still there: %v %v", id, left, err)
			}
			assertNothingLeft(t)
			t.Logf("run %s: nothing of it left %s after its start", id, time.Since(start).Round(100*time.Millisecond))
		})
		assertLabHealthy(t)
	}
}

// assertSymptomsOf fails unless every failing finding of r is one of ids
// or a symptom of one: a fault of the control plane is not blamed on the
// network.
func assertSymptomsOf(t *testing.T, r *model.Report, ids []string) {
	t.Helper()
	for _, f := range r.Findings {
		if !f.Status.Failing() || slices.Contains(ids, f.ID) {
			continue
		}
		if cause, ok := r.Find(f.CausedBy); !ok || !slices.Contains(ids, cause.ID) {
			t.Errorf("%s (%s) fails without being a symptom of %v (causedBy %q):\n%s", f.ID, f.Probe, ids, f.CausedBy, findingText(f))
		}
	}
}

// waitAgentRunning waits until run p has an agent pod running on node.
func waitAgentRunning(t *testing.T, p *runProc, node string) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	err := wait.PollUntilContextTimeout(ctxT(t, 70*time.Second), 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return true, nil
		}
		pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: runIDLabel + "=" + p.id + ",netsleuth.dev/agent=pod"})
		if err != nil {
			return false, nil
		}
		for i, pod := range pods.Items {
			if pod.Spec.NodeName == node && pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" {
				found = &pods.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil || found == nil {
		if p.exited() {
			code := p.wait(t, time.Second)
			t.Fatalf("run %s exited (%d) before an agent ran on %s; findings:\n%s\nstderr: %s", p.id, code, node, findingLines(p.report(t)), p.errOut.String())
		}
		t.Fatalf("run %s: no running agent on %s (%v)\nstderr: %s", p.id, node, err, p.errOut.String())
	}
	return found
}

// killAgentExecs kills (SIGKILL) every `netsleuth agent exec` of run p's
// agent on faultNode as soon as it appears, until the run exits: the
// process serving the API server's exec stream dies mid-request. The lab's
// nodes share this machine's PID namespace.
func killAgentExecs(t *testing.T, p *runProc) {
	want := []byte("POD_NAME=netsleuth-pod-" + faultNode + "-" + p.id + "\x00")
	for !p.exited() {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, f := range procs {
			cmd, err := os.ReadFile(f)
			if err != nil || !bytes.HasSuffix(cmd, []byte("\x00agent\x00exec\x00")) {
				continue
			}
			env, err := os.ReadFile(filepath.Join(filepath.Dir(f), "environ"))
			if err != nil || !bytes.Contains(env, want) {
				continue
			}
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Logf("killed agent exec pid %d", pid)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// assertLabHealthy fails unless the API server is ready and every node is
// Ready (a fault's restore waits for that; this proves it).
func assertLabHealthy(t *testing.T) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctxT(t, 70*time.Second), time.Second, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		b, err := kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil || string(b) != "ok" {
			return false, nil
		}
		nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, n := range nodes.Items {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("the lab is not healthy after the faults: %v", err)
	}
}

func findAny(r *model.Report, ids []string) (model.Finding, bool) {
	for _, f := range r.Findings {
		for _, id := range ids {
			if f.ID == id {
				return f, true
			}
		}
	}
	return model.Finding{}, false
}

func findingText(f model.Finding) string {
	all := f.Title + "\n" + f.RootCause + "\n" + strings.Join(f.Evidence, "\n")
	for _, fx := range f.Fixes {
		all += "\n" + fx.Description + "\n" + strings.Join(fx.Commands, "\n")
	}
	return all
}

func findingLines(r *model.Report) string {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString("  " + f.ID + " " + string(f.Status) + " (" + f.Probe + "): " + f.Title + "\n")
		if f.Status != model.StatusPass {
			b.WriteString("      " + f.RootCause + "\n      " + strings.Join(f.Evidence, " | ") + "\n")
		}
	}
	return b.String()
}

func hasPods(objs []string) bool {
	for _, o := range objs {
		if strings.HasPrefix(o, "pod/") {
			return true
		}
	}
	return false
}
