//go:build e2e

package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/probes/agent"
)

// How the kill test stops a run.
const (
	stopSIGINT  = "sigint"  // the run deletes its agents and exits
	stopSIGKILL = "sigkill" // nothing runs after it: `netsleuth cleanup` does the rest
	stopCut     = "api-cut" // the API server connection is gone mid-run, then cleanup
)

// killPattern: SIGINT for most, SIGKILL for some, a cut connection for a few.
var killPattern = []string{stopSIGINT, stopSIGINT, stopSIGKILL, stopSIGINT, stopSIGINT,
	stopCut, stopSIGINT, stopSIGINT, stopSIGKILL, stopSIGINT}

// killResult is one stopped run.
type killResult struct {
	id, kind string
	at       time.Duration // when it was stopped, after its start
	agents   int           // its pods at that moment
	finished bool          // it had finished before the stop
	cleanup  time.Duration // stop → nothing of the run left
	waited   time.Duration // of which waiting for its Lease to expire
}

// TestKillRuns: runs of the default active suite, each stopped at a random
// moment — SIGINT for most, SIGKILL for some (then `netsleuth cleanup`),
// the API connection cut for a few (then cleanup) — leave 0 objects
// labelled managed-by=netsleuth and no agent pod. 10 runs by default;
// NETSLEUTH_E2E_KILL_RUNS=100 for the long version. Runs go 4 at a time
// (NETSLEUTH_E2E_KILL_PARALLEL), so each cleanup also runs beside live runs.
func TestKillRuns(t *testing.T) {
	exclusive(t)
	assertNothingLeft(t)
	n := envInt(t, "NETSLEUTH_E2E_KILL_RUNS", 10)
	parallel := envInt(t, "NETSLEUTH_E2E_KILL_PARALLEL", 4)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("NETSLEUTH_E2E_KILL_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("kill test: %d runs, %d at a time, seed %d (NETSLEUTH_E2E_KILL_SEED repeats it)", n, parallel, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	var rmu sync.Mutex
	delay := func() time.Duration { // a moment within a warm default run (≈ 4–9 s)
		rmu.Lock()
		defer rmu.Unlock()
		return 300*time.Millisecond + time.Duration(rng.Int64N(int64(8*time.Second)))
	}
	results := make([]killResult, n)
	start := time.Now()
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = killOne(t, fmt.Sprintf("e2ek%d", i), killPattern[i%len(killPattern)], delay())
		})
	}
	wg.Wait()
	total := time.Since(start)
	assertNothingLeft(t)
	assertNoAgentPods(t)
	logKillResults(t, results, total)
}

// killOne runs one default suite as run id and stops it with kind after d.
func killOne(t *testing.T, id, kind string, d time.Duration) killResult {
	res := killResult{id: id, kind: kind, at: d}
	kc := kubeconfig
	var proxy *apiProxy
	if kind == stopCut {
		var err error
		if kc, proxy, err = proxiedKubeconfig(t); err != nil {
			t.Errorf("run %s: proxy: %v", id, err)
			return res
		}
	}
	p, err := launch(t, kc, id)
	if err != nil {
		t.Errorf("run %s: %v", id, err)
		return res
	}
	select {
	case <-p.done:
		res.finished = true
	case <-time.After(d):
	}
	ctx := ctxT(t, 4*time.Minute)
	if pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: runIDLabel + "=" + id}); err == nil {
		res.agents = len(pods.Items)
	}
	stopped := time.Now()
	var werr error
	switch {
	case res.finished:
	case kind == stopSIGINT:
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		_, werr = p.waitCode(90 * time.Second)
	case kind == stopSIGKILL:
		_ = p.cmd.Process.Kill()
		if _, werr = p.waitCode(10 * time.Second); werr == nil {
			res.waited, _ = cleanupAfterDeath(t, id)
		}
	case kind == stopCut:
		proxy.close()
		// A user facing a dead connection presses Ctrl-C after a while.
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Signal(syscall.SIGINT)
		}
		if _, werr = p.waitCode(90 * time.Second); werr == nil {
			res.waited, _ = cleanupAfterDeath(t, id)
		}
	}
	if werr != nil {
		t.Errorf("run %s (%s after %s): %v", id, kind, d.Round(time.Millisecond), werr)
	}
	gone, err := waitRunGone(ctx, id)
	if err != nil {
		t.Errorf("run %s (%s after %s): %v\nstderr: %s", id, kind, d.Round(time.Millisecond), err, p.errOut.String())
	}
	res.cleanup = time.Since(stopped)
	if res.finished {
		res.cleanup = gone
	}
	if kind == stopSIGINT && !res.finished && strings.Contains(p.errOut.String(), "could not delete the agents") {
		t.Errorf("run %s: SIGINT after %s: %s", id, d.Round(time.Millisecond), p.errOut.String())
	}
	return res
}

// assertNoAgentPods fails when any pod in the cluster still runs the agent
// (labelled or not) or a netsleuth ephemeral container is still running.
func assertNoAgentPods(t *testing.T) {
	t.Helper()
	ctx := ctxT(t, 20*time.Second)
	pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			if len(c.Command) > 1 && c.Command[0] == agent.Binary && c.Command[1] == "agent" && strings.HasPrefix(p.Name, "netsleuth-") {
				t.Errorf("agent pod %s/%s is still there (%s)", p.Namespace, p.Name, p.Status.Phase)
			}
		}
		for _, s := range p.Status.EphemeralContainerStatuses {
			if strings.HasPrefix(s.Name, "netsleuth-") && s.State.Running != nil {
				t.Errorf("ephemeral agent %s in pod %s/%s still runs", s.Name, p.Namespace, p.Name)
			}
		}
	}
}

// logKillResults logs every run and a summary per stop kind, for BENCHMARKS.md.
func logKillResults(t *testing.T, rs []killResult, total time.Duration) {
	byKind := map[string][]time.Duration{}
	waits := map[string][]time.Duration{}
	finished := 0
	for _, r := range rs {
		state := fmt.Sprintf("stopped after %s with %d agent pods", r.at.Round(time.Millisecond), r.agents)
		kind := r.kind
		if r.finished {
			state, kind = "finished before the stop", "finished"
			finished++
		}
		t.Logf("KILLRUN %s %-8s %s; cleanup %s (Lease wait %s)", r.id, r.kind, state, r.cleanup.Round(10*time.Millisecond), r.waited.Round(10*time.Millisecond))
		byKind[kind] = append(byKind[kind], r.cleanup)
		waits[kind] = append(waits[kind], r.waited)
	}
	for _, k := range []string{stopSIGINT, stopSIGKILL, stopCut, "finished"} {
		ds := byKind[k]
		if len(ds) == 0 {
			continue
		}
		t.Logf("KILLSUMMARY %-8s runs %3d  cleanup p50 %s  p95 %s  max %s  (Lease wait p50 %s)", k, len(ds),
			percentile(ds, 50).Round(10*time.Millisecond), percentile(ds, 95).Round(10*time.Millisecond),
			percentile(ds, 100).Round(10*time.Millisecond), percentile(waits[k], 50).Round(10*time.Millisecond))
	}
	verdict := "0 objects labelled " + managedSel + " and 0 agent pods left"
	if t.Failed() {
		verdict = "FAILED: see the errors above"
	}
	t.Logf("KILLTOTAL %d runs (%d finished before their stop) in %s; %s", len(rs), finished, total.Round(time.Second), verdict)
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}
