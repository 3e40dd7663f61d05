//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tmuxPane is the real binary running in a detached tmux session on a
// server of its own (its own socket), so the test never touches anyone
// else's tmux.
type tmuxPane struct {
	t      *testing.T
	socket string
}

// startTUI runs netsleuth with args in a w×h tmux pane; once it exits, the
// pane prints its exit code and stays.
func startTUI(t *testing.T, w, h int, args ...string) *tmuxPane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (apt-get install tmux)")
	}
	p := &tmuxPane{t: t, socket: fmt.Sprintf("netsleuth-e2e-%d-%s", os.Getpid(), t.Name())}
	cache := t.TempDir()
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	script := fmt.Sprintf("XDG_CACHE_HOME=%s TERM=xterm-256color '%s' %s; echo NETSLEUTH-EXIT=$?; sleep 3600",
		cache, netsleuth, strings.Join(quoted, " "))
	p.tmux("new-session", "-d", "-s", "tui", "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), "sh", "-c", script)
	t.Cleanup(p.stop)
	return p
}

// stop ends the session: when netsleuth still runs (a failed test), it is
// asked to quit with q first so it deletes its agents, then the tmux server
// goes.
func (p *tmuxPane) stop() {
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
		out, err := exec.Command("tmux", "-L", p.socket, "capture-pane", "-p", "-t", "tui").CombinedOutput()
		if err != nil || strings.Contains(string(out), "NETSLEUTH-EXIT=") {
			break
		}
		_ = exec.Command("tmux", "-L", p.socket, "send-keys", "-t", "tui", "q").Run()
		time.Sleep(time.Second)
	}
	_ = exec.Command("tmux", "-L", p.socket, "kill-server").Run()
}

func (p *tmuxPane) tmux(args ...string) string {
	p.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", p.socket}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// shot saves the screen as docs/tui-<name>.txt when
// NETSLEUTH_E2E_SCREENSHOTS names a directory (how docs/ gets its
// screenshots).
func (p *tmuxPane) shot(name, screen string) {
	dir := os.Getenv("NETSLEUTH_E2E_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "tui-"+name+".txt"), []byte(screen), 0o644); err != nil {
		p.t.Error(err)
	}
}

// screen is the pane's text as the user sees it.
func (p *tmuxPane) screen() string { return p.tmux("capture-pane", "-p", "-t", "tui") }

// keys sends tmux key names ("j", "Enter", "Escape", "q").
func (p *tmuxPane) keys(keys ...string) {
	p.t.Helper()
	for _, k := range keys {
		p.tmux("send-keys", "-t", "tui", k)
		time.Sleep(150 * time.Millisecond)
	}
}

// waitFor polls the screen until it matches re, failing with the last
// screen after d.
func (p *tmuxPane) waitFor(re string, d time.Duration) string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(d)
	for {
		s := p.screen()
		if rx.MatchString(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("after %s the screen does not match %q:\n%s", d, re, s)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestTUIRunOpenRerunQuit drives the real binary as a user would on the lab
// as it is: the run ends, a finding opens full screen and scrolls, r re-runs
// its probe, q quits through the cleanup, and no agent of the run is left.
func TestTUIRunOpenRerunQuit(t *testing.T) {
	args := append([]string{"--kubeconfig", kubeconfig, "--probe", "pod-to-pod", "--probe", "services", "--probe", "runtime"}, agentFlags...)
	p := startTUI(t, 80, 24, args...)

	// The first frame comes before the cluster is read; the run ends.
	p.waitFor(`netsleuth-lab │ v\d`, 15*time.Second)
	s := p.waitFor(`done \d+:\d\d .*3/3 (probes )?done`, 4*time.Minute)
	p.shot("run-done", s)
	if !strings.Contains(s, "Probes (3)") {
		t.Errorf("no probe tab:\n%s", s)
	}
	if !regexp.MustCompile(`\d+ nodes? │ CNI [^│]+ │ kube-proxy`).MatchString(s) {
		t.Errorf("the header does not show the discovered nodes, CNI and kube-proxy mode:\n%s", s)
	}

	// The run's ID, from the event log, names its agents.
	p.keys("l")
	s = p.waitFor(`event log`, 5*time.Second)
	m := regexp.MustCompile(`\d\d:\d\d:\d\d ([0-9a-f]{8}) `).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no run ID in the event log:\n%s", s)
	}
	runID := m[1]
	p.keys("l")

	// The terminal shrinks to 80×14 (so the finding is longer than the
	// screen); probes view, first probe (pod-to-pod, scenario B), unfold,
	// its first finding; enter opens it full screen; j scrolls.
	p.tmux("resize-window", "-t", "tui", "-x", "80", "-y", "14")
	p.keys("2", "g")
	p.waitFor(`▸ \S+ \S+\s+pod-to-pod`, 5*time.Second)
	p.keys("Right", "j")
	s = p.waitFor(`○ finding|● finding`, 5*time.Second)
	p.keys("Enter")
	s = p.waitFor(`finding \(full screen, esc to go back\) ─+ 1-\d+/\d+`, 5*time.Second)
	p.shot("finding-full-screen", s)
	if !strings.Contains(s, "pod-to-pod") {
		t.Errorf("the opened finding is not pod-to-pod's:\n%s", s)
	}
	p.keys("j")
	p.waitFor(`full screen, esc to go back\) ─+ 2-\d+/\d+`, 5*time.Second)
	p.keys("Escape", "Escape")

	// r re-runs the selected finding's probe; it runs and ends again.
	p.keys("r")
	p.waitFor(`re-running pod-to-pod \(run [0-9a-f]{8}\)`, 5*time.Second)
	p.waitFor(`done \d+:\d\d .*3/3 (probes )?done`, 4*time.Minute)

	// q: the cleanup shows until the agents are deleted, then the shell
	// gets the summary and exit 0.
	p.keys("q")
	s = p.waitFor(`NETSLEUTH-EXIT=\d+`, 2*time.Minute)
	if !strings.Contains(s, "NETSLEUTH-EXIT=0") || !strings.Contains(s, "cleanup done") {
		t.Errorf("quitting did not end cleanly:\n%s", s)
	}
	if !regexp.MustCompile(`netsleuth: \d+ pass, \d+ warn, \d+ fail, \d+ error, \d+ skip`).MatchString(s) {
		t.Errorf("no summary on exit:\n%s", s)
	}

	for _, o := range leftBehind(t, "netsleuth.dev/run-id="+runID) {
		t.Errorf("%s of run %s is left", o, runID)
	}
}

// TestTUICtrlCMidRun: Ctrl-C while pod-to-pod's agents run cancels the run;
// the screen says it is cleaning up, netsleuth exits 0 once the agents are
// deleted, and none is left.
func TestTUICtrlCMidRun(t *testing.T) {
	args := append([]string{"--kubeconfig", kubeconfig, "--probe", "pod-to-pod"}, agentFlags...)
	p := startTUI(t, 100, 30, args...)
	s := p.waitFor(`RUN .*namespace netsleuth-[0-9a-f]{8}|pod agent`, 2*time.Minute)
	m := regexp.MustCompile(`netsleuth-([0-9a-f]{8})`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no agent namespace on screen while running:\n%s", s)
	}
	runID := m[1]
	p.keys("C-c")
	s = p.waitFor(`cleaning up|NETSLEUTH-EXIT=`, 10*time.Second)
	p.shot("cleaning-up", s)
	s = p.waitFor(`NETSLEUTH-EXIT=\d+`, 2*time.Minute)
	if !strings.Contains(s, "NETSLEUTH-EXIT=0") || !strings.Contains(s, "cleanup done") {
		t.Errorf("Ctrl-C did not end cleanly:\n%s", s)
	}
	if left := leftBehind(t, "netsleuth.dev/run-id="+runID); len(left) > 0 {
		t.Errorf("run %s left %s", runID, strings.Join(left, ", "))
	}
}
