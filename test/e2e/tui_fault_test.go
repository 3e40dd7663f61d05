//go:build e2e

package e2e

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// faultUntilMended seeds a lab fault the test itself mends (lab unfault);
// the cleanup unfaults it only when the test did not get that far.
func faultUntilMended(t *testing.T, name string) {
	t.Helper()
	exclusive(t)
	lab(t, "fault", name)
	t.Cleanup(func() {
		out, _ := labCmd("status")
		if !regexp.MustCompile(`(?m)^active faults:.*\b` + name + `\b`).MatchString(out) {
			return
		}
		if out, err := labCmd("unfault", name); err != nil {
			t.Errorf("unfault %s: %v\n%s", name, err, out)
		}
	})
}

// TestTUISNATFixRerunPass is the newcomer's first minute on the real
// binary at 80×24 in tmux: with node 1's MASQUERADE rule gone, the failing
// root cause is selected with its fix on the first screen; the finding
// opens and scrolls; the flow table shows the untranslated packets and a
// flow opens to them; c copies the fix (OSC 52 into tmux's buffer, and
// printed on exit); the lab is mended; r re-runs the probe and it passes;
// q quits through the cleanup with exit 0 and no agent left.
func TestTUISNATFixRerunPass(t *testing.T) {
	faultUntilMended(t, "snat")
	args := append([]string{"--kubeconfig", kubeconfig, "--probe", "external", "--target", "192.168.2.10:80"}, agentFlags...)
	p := startTUI(t, 80, 24, args...)
	// OSC 52 from the application sets a tmux buffer (show-buffer reads it).
	p.tmux("set-option", "-s", "set-clipboard", "on")

	// The failing root cause is selected, its fix on the first screen.
	s := p.waitFor(`done \d+:\d\d .*1/1 (probes )?done`, 4*time.Minute)
	p.shot("snat-first-screen", s)
	for _, want := range []string{"[1 Root causes (1)]", "▸ [1] ✗ FAIL", "No source NAT on node nsl-node1", "Root cause", "Fixes", "$ iptables -t nat"} {
		if !strings.Contains(s, want) {
			t.Errorf("the first screen lacks %q:\n%s", want, s)
		}
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

	// Enter opens the root cause full screen; j scrolls it.
	p.keys("Enter")
	s = p.waitFor(`finding \(full screen, esc to go back\) ─+ 1-\d+/\d+`, 5*time.Second)
	p.shot("snat-finding", s)
	p.keys("j", "j")
	p.waitFor(`full screen, esc to go back\) ─+ 3-\d+/\d+`, 5*time.Second)
	p.keys("Escape")

	// F: the capture's flows; the pod's SYNs left the uplink untranslated.
	p.keys("F")
	s = p.waitFor(`flows of every capture \(\d+;[\s\S]*source-not-translated`, 10*time.Second)
	p.shot("snat-flows", s)
	p.keys("s", "s", "s", "s", "s", "s", "s", "s") // by classification, problems first
	s = p.waitFor(`sort CLASSIFICATION ▲`, 5*time.Second)
	// The cursor stays on the flow it was on, the first captured: the
	// pod's SYN or its ICMP echo, whichever the agent sent first.
	cursor := regexp.MustCompile(`▸ .* (tcp|icmp) .*✗ (source-not-translated|tcp-no-reply|echo-unanswered)`).FindStringSubmatch(s)
	if cursor == nil {
		t.Errorf("sorted by classification, the selected flow is not a problem:\n%s", s)
	}
	p.keys("Enter")
	first := `→ +\S+ +\d+  SYN`
	if cursor != nil && cursor[1] == "icmp" {
		first = `→ +\S+ +\d+  icmp echo`
	}
	s = p.waitFor(`packets of one flow[\s\S]*`+first, 10*time.Second)
	p.shot("snat-packets", s)
	p.keys("Escape", "Escape")
	p.waitFor(`Root causes \(1\)`, 5*time.Second)

	// c copies the marked fix.
	p.keys("c")
	p.waitFor(`copied fix 1`, 5*time.Second)
	if out, err := exec.Command("tmux", "-L", p.socket, "show-buffer").CombinedOutput(); err != nil || !strings.Contains(string(out), "iptables -t nat") {
		t.Errorf("the OSC 52 copy did not reach tmux's buffer (%v):\n%s", err, out)
	}

	// Mend the lab, re-run the selected root cause's probe: it passes.
	lab(t, "unfault", "snat")
	p.keys("r")
	p.waitFor(`re-running external \(run [0-9a-f]{8}\)`, 5*time.Second)
	s = p.waitFor(`done \d+:\d\d │ 0 root causes.*1/1 (probes )?done`, 4*time.Minute)
	p.shot("snat-mended", s)
	if strings.Contains(s, "FAIL") {
		t.Errorf("after the fix the re-run still fails:\n%s", s)
	}

	// q: the cleanup, then the summary, the copied fix and exit 0.
	p.keys("q")
	s = p.waitFor(`NETSLEUTH-EXIT=\d+`, 2*time.Minute)
	p.shot("snat-exit", s)
	for _, want := range []string{"NETSLEUTH-EXIT=0", "cleanup done", "the fix commands you copied (c)", "iptables -t nat"} {
		if !strings.Contains(s, want) {
			t.Errorf("the exit lacks %q:\n%s", want, s)
		}
	}

	if left := leftBehind(t, "netsleuth.dev/run-id="+runID); len(left) > 0 {
		t.Errorf("run %s left %s", runID, strings.Join(left, ", "))
	}
}
