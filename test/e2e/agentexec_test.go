//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/exec"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// TestAgentExecRefusesHostileRequests: a real privileged node agent (the
// host's root mounted at /host, hostNetwork) reads what probes ask of it
// (a sysctl, an interface attribute behind /sys/class/net's link into
// /sys/devices), and refuses what a client with pods/exec might try: the
// host's files through the mount or /proc/self/root, another process's
// environment, "..", an unknown op, a shell in the iptables table, an
// oversize body. Each refusal is the response's error and exit 2.
func TestAgentExecRefusesHostileRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := agent.NewManager(kube, restConfig, agent.Config{RunID: probes.NewRunID(), Image: "netsleuth.local/netsleuth:dev", PullPolicy: corev1.PullNever})
	defer func() {
		if err := m.Close(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("deleting the agent: %v", err)
		}
	}()
	m.Plan([]probes.AgentKind{probes.AgentNode}) // its namespace must admit a privileged agent
	a := m.Start(ctx, probes.AgentNode, []string{"nsl-node2"})[0]
	if a.Err != nil {
		t.Fatal(a.Err)
	}
	resp, err := m.Exec(ctx, a, ops.Request{Ops: []ops.Op{{Kind: ops.ReadFiles, Paths: []string{"/proc/sys/net/ipv4/ip_forward", "/sys/class/net/lo/mtu"}}}})
	if err != nil || resp.Results[0].Files["/proc/sys/net/ipv4/ip_forward"] != "1" || resp.Results[0].Files["/sys/class/net/lo/mtu"] != "65536" {
		t.Fatalf("allowed reads: %+v, %v", resp, err)
	}
	for body, want := range map[string]string{
		`{"ops":[{"kind":"read-files","paths":["/host/etc/shadow"]}]}`:                            `path "/host/etc/shadow" is outside the readable set`,
		`{"ops":[{"kind":"read-files","paths":["/proc/self/root/host/etc/kubernetes"]}]}`:         "is outside the readable set",
		`{"ops":[{"kind":"read-files","paths":["/proc/1/environ"]}]}`:                             "is outside the readable set",
		`{"ops":[{"kind":"read-files","paths":["/proc/sys/net/../../../host/etc/shadow"]}]}`:      "is not a clean absolute path",
		`{"ops":[{"kind":"exec","target":"id"}]}`:                                                 "unknown op kind",
		`{"ops":[{"kind":"iptables-save","table":"nat -M /bin/sh"}]}`:                             "is not one of filter, nat, mangle, raw, security",
		`{"ops":[{"kind":"tcp","target":"10.250.0.1","port":6443,"timeoutMs":600000}]}`:           "timeoutMs 600000 is out of range",
		`{"ops":[]}` + strings.Repeat(" ", ops.MaxRequestBytes):                                   "larger than 1048576 bytes",
		`{"ops":[{"kind":"dns","dns":{"search":{"name":"x","path":"/host/etc/shadow"}}}]}`:        "reads only /etc/resolv.conf",
		`{"ops":[{"kind":"http","target":"10.250.0.1","port":10250,"path":"@169.254.169.254/"}]}`: "is not an absolute path",
	} {
		var stdout, stderr bytes.Buffer
		err := m.Stream(ctx, a, "exec", strings.NewReader(body), &stdout, &stderr)
		var exit exec.ExitError
		if !errors.As(err, &exit) || exit.ExitStatus() != 2 {
			t.Errorf("%.60q: %v, want exit 2 (stderr %q)", body, err, stderr.String())
		}
		var resp ops.Response
		if jerr := json.Unmarshal(stdout.Bytes(), &resp); jerr != nil || !strings.Contains(resp.Error, want) || len(resp.Results) != 0 {
			t.Errorf("%.60q: response %q (%v), want the refusal %q", body, stdout.String(), jerr, want)
		}
		if s := strings.TrimSpace(stderr.String()); strings.Contains(s, "\n") || !strings.HasPrefix(s, "netsleuth: the agent refused the request: ") {
			t.Errorf("%.60q: stderr %q is not the one-line refusal", body, s)
		}
	}
}
