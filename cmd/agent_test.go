package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// TestAgentExecRefusalExitsTwo: `netsleuth agent exec` answers a request it
// refuses with the reason as the response's error, one line on stderr, and
// exit 2; it runs nothing.
func TestAgentExecRefusalExitsTwo(t *testing.T) {
	var out, errOut bytes.Buffer
	in := strings.NewReader(`{"ops":[{"kind":"read-files","paths":["/proc/self/root/host/etc/shadow"]}]}`)
	app := App{Streams: genericiooptions.IOStreams{In: in, Out: &out, ErrOut: &errOut}, Argv0: "netsleuth"}
	code := Execute(context.Background(), app, []string{"agent", "exec"})
	if code != ExitUsage {
		t.Errorf("exit %d, want %d", code, ExitUsage)
	}
	var resp ops.Response
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil || !strings.Contains(resp.Error, `path "/proc/self/root/host/etc/shadow" is outside the readable set`) || len(resp.Results) != 0 {
		t.Errorf("stdout %q (%v)", out.String(), err)
	}
	if got := errOut.String(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "netsleuth: the agent refused the request: op 0") {
		t.Errorf("stderr %q", got)
	}
}
