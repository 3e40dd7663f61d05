//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

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

// assertNothingLeft fails when a namespace, pod or service netsleuth made
// survives the run that made it.
func assertNothingLeft(t *testing.T) {
	t.Helper()
	ctx := ctxT(t, 20*time.Second)
	nss, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: managedSel})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: managedSel})
	if err != nil {
		t.Fatal(err)
	}
	if len(nss.Items)+len(pods.Items) > 0 {
		var left []string
		for _, n := range nss.Items {
			left = append(left, "namespace/"+n.Name+" ("+string(n.Status.Phase)+")")
		}
		for _, p := range pods.Items {
			left = append(left, "pod/"+p.Namespace+"/"+p.Name)
		}
		t.Errorf("netsleuth left objects behind: %s", strings.Join(left, ", "))
	}
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

func TestActiveFaults(t *testing.T) {
	cases := []struct {
		fault string
		wants []want
	}{
		{"snat", []want{{id: "external.no-masquerade", status: "fail", subject: extSubject,
			rootCause: `No MASQUERADE or SNAT rule on node nsl-node1 covers pod CIDR 10\.244\.0\.0/24 → 192\.168\.2\.0/24`,
			fix:       "iptables -t nat -A POSTROUTING -s 10.244.0.0/24 -d 192.168.2.0/24 -j MASQUERADE"}}},
		{"ip-forward", []want{
			{id: "external.ip-forward-off", status: "fail", subject: extSubject, rootCause: `ip_forward is 0 on node nsl-node1`, fix: "sysctl -w net.ipv4.ip_forward=1"},
			{id: "pod-to-pod.ip-forward-off", status: "fail", subject: "Node/nsl-node1", rootCause: `ip_forward is 0 on node nsl-node1`, fix: "sysctl -w net.ipv4.ip_forward=1"}}},
		{"node-route", []want{{id: "external.node-no-route", status: "fail", subject: extSubject,
			rootCause: `Node nsl-node1 has only the reject route .* for 192\.168\.2\.10`, fix: "ip route add 192.168.2.0/24 via 10.250.0.254"}}},
	}
	for _, tc := range cases {
		t.Run(tc.fault, func(t *testing.T) {
			args := []string{"--probe", "pod-to-pod", "--probe", "external", "--target", extTarget}
			if tc.fault == "ip-forward" {
				// The bridge CNI plugin sets ip_forward=1 on every pod ADD, which
				// would heal this fault as soon as the agents start: start the
				// pod agents first, then break forwarding, and let the run reuse them.
				exclusive(t)
				args = append(args, "--agent-namespace", preStartedAgents(t))
			}
			withFault(t, tc.fault, "--node", "nsl-node1")
			r, code := active(t, args...)
			for _, w := range tc.wants {
				find(t, r, w)
			}
			find(t, r, want{id: "external.ok", status: "pass", subject: "Node/nsl-node2 -> " + extTarget})
			if code != 1 {
				t.Errorf("exit %d with fault %s, want 1", code, tc.fault)
			}
		})
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

// TestActiveCleanup leaves an object as a killed run would, checks the next
// run notices it and `netsleuth cleanup` removes it.
func TestActiveCleanup(t *testing.T) {
	exclusive(t)
	ctx := ctxT(t, 2*time.Minute)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "netsleuth-e2edead", Labels: map[string]string{
		"app.kubernetes.io/managed-by": "netsleuth", "netsleuth.dev/run-id": "e2edead"}}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
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
