package report

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/probetest"
)

// TestNoFormatPrintsASecret runs a probe that quotes secrets through the
// runner, as check does, and writes its report in every format: none
// prints a secret, each shows the redaction marker where one was.
func TestNoFormatPrintsASecret(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := probes.NewCollector(model.Cluster{Context: "lab", Server: "https://127.0.0.1:6443"}, started)
	probes.Run(context.Background(), []probes.Probe{probetest.Leaky{}}, &probes.Env{RunID: "r1"}, c, probes.RunnerOptions{})
	r := c.Report(started.Add(time.Second))
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 2 {
		t.Fatalf("want the probe's finding and its runner.error, got %+v", r.Findings)
	}
	for _, f := range Formats() {
		var b bytes.Buffer
		if err := Write(&b, Format(f), r, Options{Color: f == string(Text)}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if leaks := probetest.Leaks(out); len(leaks) > 0 {
			t.Errorf("%s report prints %q:\n%s", f, leaks, out)
		}
		for _, want := range []string{"API_TOKEN=" + model.Redacted, "-----BEGIN EC PRIVATE KEY-----" + model.Redacted, "Bearer " + model.Redacted} {
			if !strings.Contains(out, want) {
				t.Errorf("%s report does not say what was redacted (%q):\n%s", f, want, out)
			}
		}
	}
}
