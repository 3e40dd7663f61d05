//go:build e2e

package e2e

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/netsleuth/netsleuth/probes/agent"
)

// preStartedAgents creates, in a test namespace, the pod-network agents run
// runID would create (same names and labels), so a run with
// --agent-namespace and --run-id runID reuses them (and deletes them).
func preStartedAgents(t *testing.T, runID string) string {
	t.Helper()
	ns := namespace(t, nil)
	for _, kind := range []string{"pod", "peer"} {
		for _, node := range []string{"nsl-node1", "nsl-node2"} {
			startPod(t, ns, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "netsleuth-" + kind + "-" + node + "-" + runID, Labels: map[string]string{
					"app.kubernetes.io/managed-by": "netsleuth", runIDLabel: runID, "netsleuth.dev/agent": kind}},
				Spec: corev1.PodSpec{
					NodeName:                      node,
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](65534),
						Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ping_group_range", Value: "0 2147483647"}}},
					Containers: []corev1.Container{{Name: "agent", Image: "netsleuth.local/netsleuth:dev",
						ImagePullPolicy: corev1.PullNever, Command: []string{agent.Binary, "agent", "serve"}}},
				},
			})
		}
	}
	return ns
}
