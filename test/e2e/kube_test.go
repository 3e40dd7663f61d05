//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/ptr"
)

const labImage = "netsleuth.local/labecho:lab"

// namespace creates a namespace for one test and deletes it (waiting until it
// is gone) when the test ends.
func namespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "e2e-", Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		_ = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, err := kube.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
			return err != nil, nil
		})
	})
	return ns.Name
}

// echoPod is a labecho server (HTTP 8080, TCP and UDP echo on 7) pinned to a node.
func echoPod(name, node string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []corev1.Container{{
				Name: "echo", Image: labImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"labecho", "--http=:8080", "--tcp-echo=:7", "--udp-echo=:7"},
				Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "echo", ContainerPort: 7}},
			}},
		},
	}
}

// startPod creates pod in ns and waits until it runs with an IP.
func startPod(t *testing.T, ns string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = p
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "", nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s did not start: phase %s, %+v", ns, pod.Name, got.Status.Phase, got.Status.ContainerStatuses)
	}
	return got
}

// execIn runs a command in a pod's first container through the API server.
func execIn(ctx context.Context, ns, pod string, cmd ...string) (string, error) {
	req := kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(restConfig, "POST", req.URL())
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &out})
	return out.String(), err
}

// reach reports whether pod can fetch url within a few seconds.
func reach(t *testing.T, ns, pod, url string) (bool, string) {
	t.Helper()
	out, err := execIn(ctxT(t, 20*time.Second), ns, pod, "timeout", "4", "wget", "-qO-", url)
	return err == nil && strings.Contains(out, "netsleuth-labecho"), out
}

// eventually retries check for up to d (kube-proxy and the enforcer apply
// changes asynchronously).
func eventually(t *testing.T, d time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for {
		ok, msg := check()
		if ok {
			return
		}
		last = msg
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s (last: %s)", what, d, strings.TrimSpace(last))
		}
		time.Sleep(time.Second)
	}
}

func url(ip string, port int) string { return fmt.Sprintf("http://%s:%d/", ip, port) }

// podCIDR is the pod range the controller-manager gave node (the lab's nodes
// register in either order, so nsl-node1 may hold 10.244.0.0/24 or .1.0/24).
func podCIDR(t *testing.T, node string) string {
	t.Helper()
	n, err := kube.CoreV1().Nodes().Get(ctxT(t, 10*time.Second), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Spec.PodCIDR == "" {
		t.Fatalf("node %s has no pod CIDR", node)
	}
	return n.Spec.PodCIDR
}
