//go:build e2e

// Package e2e tests netsleuth and its lab on a real local cluster: real
// apiserver, kubelet, containerd, bridge CNI, kube-proxy and CoreDNS, brought
// up by hack/lab. Run it with `make test` (or `hack/test.sh e2e`); with
// NETSLEUTH_E2E_KEEP=1 the lab stays up afterwards for the next run, and
// with NETSLEUTH_E2E_KUBECONFIG=<lab kubeconfig> the suite runs against a
// lab that is already up and leaves it up. NETSLEUTH_E2E_CNI=calico runs it
// on the lab's calico profile (Calico's CNI plugin and felix; hack/test.sh
// runs a subset there), where the tests expect Calico's terms.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var (
	repoRoot   string
	kubeconfig string
	netsleuth  string // the binary under test
	labBin     string // hack/lab, built once
	kube       kubernetes.Interface
	restConfig *rest.Config
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp("", "netsleuth-e2e-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	netsleuth, labBin = filepath.Join(tmp, "netsleuth"), filepath.Join(tmp, "lab")
	for out, pkg := range map[string]string{netsleuth: ".", labBin: "./hack/lab"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = repoRoot, os.Stderr, os.Stderr
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := cmd.Run(); err != nil {
			return fail(fmt.Errorf("build %s: %w", pkg, err))
		}
	}
	// NETSLEUTH_E2E_KUBECONFIG points at a lab someone else brought up (one
	// shared by several worktrees): the suite uses it as it is, and neither
	// brings it up nor tears it down.
	shared := os.Getenv("NETSLEUTH_E2E_KUBECONFIG")
	kubeconfig = shared
	if shared == "" {
		// The profile is always named: `up` alone would keep a running
		// lab's profile, whatever the tests expect.
		if out, err := labCmd("up", "--cni", onProfile("bridge", "calico")); err != nil {
			return fail(fmt.Errorf("lab up: %w\n%s", err, out))
		}
		kubeconfig = filepath.Join(repoRoot, ".lab", "kubeconfig")
	}
	if restConfig, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
		return fail(err)
	}
	if kube, err = kubernetes.NewForConfig(restConfig); err != nil {
		return fail(err)
	}
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := namespacesGone(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: %v\n", err)
		code = 1
	}
	if shared != "" {
		fmt.Fprintln(os.Stderr, "e2e: NETSLEUTH_E2E_KUBECONFIG: the shared lab is left as it was")
		return code
	}
	if os.Getenv("NETSLEUTH_E2E_KEEP") == "1" {
		fmt.Fprintln(os.Stderr, "e2e: NETSLEUTH_E2E_KEEP=1: leaving the lab up")
		return code
	}
	// The suite owns the lab's lifetime: tear it down and prove nothing is left.
	if out, err := labCmd("down"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: lab down failed: %v\n%s\n", err, out)
		code = 1
	}
	out, err := labCmd("check-clean")
	fmt.Fprint(os.Stderr, "e2e: ", out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: the lab left things behind: %v\n", err)
		code = 1
	}
	return code
}

// calicoLab reports whether the suite runs on the lab's calico profile.
func calicoLab() bool { return os.Getenv("NETSLEUTH_E2E_CNI") == "calico" }

// onProfile returns bridge's or calico's value for the lab's profile.
func onProfile[T any](bridge, calico T) T {
	if calicoLab() {
		return calico
	}
	return bridge
}

func fail(err error) int {
	fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
	return 1
}

// labCmd runs the lab program with the repository as working directory.
func labCmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, labBin, args...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lab runs a lab verb and fails the test when it fails.
func lab(t *testing.T, args ...string) {
	t.Helper()
	if out, err := labCmd(args...); err != nil {
		t.Fatalf("lab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// exclusive serialises tests that change the shared lab (faults) across
// test processes: several developers' suites may share one lab.
func exclusive(t *testing.T) {
	t.Helper()
	if locked[t.Name()] {
		return
	}
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "netsleuth-e2e-fault.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	locked[t.Name()] = true
	t.Cleanup(func() {
		delete(locked, t.Name())
		f.Close()
	})
}

// locked records the tests holding the fault lock (tests run one at a time).
var locked = map[string]bool{}

// withFault injects a lab fault for the rest of the test.
func withFault(t *testing.T, name string, flags ...string) {
	t.Helper()
	exclusive(t)
	lab(t, append([]string{"fault", name}, flags...)...)
	t.Cleanup(func() {
		if out, err := labCmd("unfault", name); err != nil {
			t.Errorf("unfault %s: %v\n%s", name, err, out)
		}
	})
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
