//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/model"
)

// check runs `netsleuth check -o json` against the lab and returns the
// validated report and the exit code.
func check(t *testing.T, args ...string) (*model.Report, int) {
	t.Helper()
	stdout, stderr, code := netsleuthCmd(t, append([]string{"check", "-o", "json", "--kubeconfig", kubeconfig}, args...)...)
	if code == 2 {
		t.Fatalf("netsleuth check %s: exit 2: %s", strings.Join(args, " "), stderr)
	}
	var r model.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s\nstderr: %s", err, stdout, stderr)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("report breaks the schema contract: %v", err)
	}
	return &r, code
}

func netsleuthCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(netsleuth, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// want describes the finding a test expects.
type want struct {
	id, status, subject string // subject: "Kind/namespace/name" as Subject.String()
	rootCause           string // regexp
	fix                 string // substring of some fix's commands or manifest
}

// find returns the finding matching w's id and subject, failing the test with
// the whole list when there is none.
func find(t *testing.T, r *model.Report, w want) model.Finding {
	t.Helper()
	var seen []string
	for _, f := range r.Findings {
		subj := ""
		if f.Subject != nil {
			subj = f.Subject.String()
		}
		if f.ID == w.id && (w.subject == "" || subj == w.subject) {
			assertFinding(t, f, w)
			return f
		}
		line := f.ID + " " + subj + " " + string(f.Status)
		if f.Status != model.StatusPass {
			line += "\n      root cause: " + f.RootCause + "\n      evidence: " + strings.Join(f.Evidence, "\n                ")
		}
		seen = append(seen, line)
	}
	t.Fatalf("no finding %s for %s; findings:\n  %s", w.id, w.subject, strings.Join(seen, "\n  "))
	return model.Finding{}
}

func assertFinding(t *testing.T, f model.Finding, w want) {
	t.Helper()
	if w.status != "" && string(f.Status) != w.status {
		t.Errorf("%s: status %s, want %s (root cause: %s)", f.ID, f.Status, w.status, f.RootCause)
	}
	if w.rootCause != "" && !regexp.MustCompile(w.rootCause).MatchString(f.RootCause) {
		t.Errorf("%s: root cause %q does not match %q", f.ID, f.RootCause, w.rootCause)
	}
	if w.fix != "" && !fixMentions(f, w.fix) {
		t.Errorf("%s: no fix mentions %q: %+v", f.ID, w.fix, f.Fixes)
	}
}

func fixMentions(f model.Finding, s string) bool {
	for _, x := range f.Fixes {
		if strings.Contains(x.Manifest, s) || strings.Contains(x.Description, s) {
			return true
		}
		for _, c := range x.Commands {
			if strings.Contains(c, s) {
				return true
			}
		}
	}
	return false
}
