package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/util/exec"

	"github.com/netsleuth/netsleuth/probes"
)

func runningPod() *corev1.Pod {
	return &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{Name: containerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}}
}

func nodeReady(status corev1.ConditionStatus) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: status, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status."}}}}
}

func TestLostReason(t *testing.T) {
	deleting := runningPod()
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	exitedPod := runningPod()
	exitedPod.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"}}
	failed := runningPod()
	failed.Status.Phase, failed.Status.Reason = corev1.PodFailed, "Evicted"
	dial := errors.New(`exec into ns/p: error dialing backend: dial tcp 10.0.0.2:10250: connect: connection refused`)
	eof := errors.New("exec into ns/p: EOF")
	killed := fmt.Errorf("exec into ns/p: %w", exec.CodeExitError{Err: errors.New("command terminated with non-zero exit code: 137"), Code: 137})
	for _, c := range []struct {
		name   string
		f      lostFacts
		reason string
		detail string
	}{
		{"API server back", lostFacts{ExecErr: eof, APIDown: true, APIBack: 6 * time.Second}, probes.LostAPIServer, "answered again 6s later"},
		{"API server still away", lostFacts{ExecErr: eof, APIDown: true}, probes.LostAPIServer, "still did not answer"},
		{"API down beats a gone pod", lostFacts{ExecErr: eof, APIDown: true, APIBack: time.Second, PodGone: true}, probes.LostAPIServer, ""},
		{"pod gone", lostFacts{ExecErr: eof, PodGone: true, ExitCode: -1}, probes.LostPodDeleted, "deleted"},
		{"pod terminating", lostFacts{ExecErr: eof, Pod: deleting, ExitCode: -1}, probes.LostPodDeleted, "03:04:05"},
		{"container exited", lostFacts{ExecErr: eof, Pod: exitedPod, ExitCode: -1}, probes.LostExited, "code 137"},
		{"pod failed", lostFacts{ExecErr: eof, Pod: failed, ExitCode: -1}, probes.LostExited, "Evicted"},
		{"node NotReady", lostFacts{ExecErr: dial, Pod: runningPod(), Node: nodeReady(corev1.ConditionUnknown), ExitCode: -1}, probes.LostNodeDown, "node n2 is NotReady"},
		{"kubelet refuses, node still Ready", lostFacts{ExecErr: dial, Pod: runningPod(), Node: nodeReady(corev1.ConditionTrue), ExitCode: -1}, probes.LostKubelet, "kubelet"},
		{"exec process killed", lostFacts{ExecErr: killed, Pod: runningPod(), Node: nodeReady(corev1.ConditionTrue), ExitCode: 137}, probes.LostExecStopped, "signal 9"},
		{"stream cut", lostFacts{ExecErr: eof, Pod: runningPod(), Node: nodeReady(corev1.ConditionTrue), ExitCode: -1}, probes.LostStreamCut, "stream broke"},
		{"stream hung, kubelet away, node still Ready", lostFacts{ExecErr: errors.New("exec into ns/p: Timeout occurred"), Pod: runningPod(), Node: nodeReady(corev1.ConditionTrue), ExitCode: -1,
			Kubelet: errors.New("the server is currently unable to handle the request (get nodes n2:10250)\nerror trying to reach service")}, probes.LostKubelet, "did not answer (the server is currently unable to handle the request (get nodes n2:10250) error trying to reach service)"},
		{"exec killed while the kubelet is away", lostFacts{ExecErr: killed, ExitCode: 137, Kubelet: errors.New("refused")}, probes.LostExecStopped, "signal 9"},
		{"nothing known", lostFacts{ExecErr: eof, ExitCode: -1}, probes.LostStreamCut, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, d := lostReason(c.f)
			if r != c.reason || !strings.Contains(d, c.detail) {
				t.Errorf("lostReason = %s, %q; want %s containing %q", r, d, c.reason, c.detail)
			}
		})
	}
}

// TestLostFromTheRunsWatch: an agent deleted mid-run is known lost from the
// run's own watch of its pods, and one that runs is not.
func TestLostFromTheRunsWatch(t *testing.T) {
	cs := fake.NewClientset()
	fakeKubelet(cs, "")
	m := NewManager(cs, nil, Config{RunID: "r9", Image: "img"})
	ctx := context.Background()
	as := m.Start(ctx, probes.AgentPod, []string{"n1", "n2"})
	for _, a := range as {
		if a.Err != nil {
			t.Fatal(a.Err)
		}
		if err := m.Lost(a); err != nil {
			t.Fatalf("a running agent is lost: %v", err)
		}
	}
	if err := cs.CoreV1().Pods(as[1].Namespace).Delete(ctx, as[1].Pod, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var lost *probes.AgentLostError
	deadline := time.Now().Add(10 * time.Second)
	for !errors.As(m.Lost(as[1]), &lost) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if lost == nil || lost.Reason != probes.LostPodDeleted || lost.Node != "n2" {
		t.Fatalf("deleted agent: %v", lost)
	}
	if err := LostAmong(&probes.Env{Agents: m}, as...); !errors.As(err, &lost) || lost.Pod != as[1].Pod {
		t.Errorf("LostAmong = %v", err)
	}
	if err := m.Lost(probes.Agent{Kind: probes.AgentPod, Node: "n1", Namespace: "users", Pod: "someone-elses"}); err != nil {
		t.Errorf("a pod the run did not create is judged: %v", err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNotStartedAPIUnreachable: an agent whose creation the API server did
// not answer is one cause for every node, naming the API server, not the node.
func TestNotStartedAPIUnreachable(t *testing.T) {
	refused := fmt.Errorf("creating agent pod ns/p: %w", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}})
	a := probes.Agent{Kind: probes.AgentPod, Node: "n1", Namespace: "netsleuth-r1", Pod: "p1", Err: refused}
	b := a
	b.Node, b.Pod = "n2", "p2"
	fa, fb := NotStarted("pod-to-pod", a), NotStarted("dns", b)
	if fa[0].ID != "agent.api-unreachable" || fa[0].Key != fb[0].Key || fa[1].CausedBy != fa[0].Key {
		t.Fatalf("causes %+v / %+v", fa[0], fb[0])
	}
	if !strings.Contains(fa[0].Title, "API server") || !strings.Contains(strings.Join(fa[0].Fixes[0].Commands, " "), "/readyz") {
		t.Errorf("cause: %+v", fa[0])
	}
}
