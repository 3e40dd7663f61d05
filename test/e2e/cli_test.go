//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// tokenKubeconfig writes a kubeconfig for a new ServiceAccount in ns that has
// only the given cluster-wide rules.
func tokenKubeconfig(t *testing.T, ns string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	sa, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "limited"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) > 0 {
		name := "e2e-" + ns
		if _, err := kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx := ctxT(t, 10*time.Second)
			_ = kube.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
			_ = kube.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
		})
	}
	tok, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["lab"] = &clientcmdapi.Cluster{Server: restConfig.Host, CertificateAuthorityData: restConfig.CAData}
	cfg.AuthInfos["limited"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["limited"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: "limited"}
	cfg.CurrentContext = "limited"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestForbiddenDegradesToErrorFindings: with read access to nodes only, the
// probes that need more say which permission is missing instead of crashing
// or skipping silently.
func TestForbiddenDegradesToErrorFindings(t *testing.T) {
	ns := namespace(t, nil)
	kc := tokenKubeconfig(t, ns, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list"}}})
	before, err := kube.CoreV1().Namespaces().List(ctxT(t, 10*time.Second), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := netsleuthCmd(t, "check", "-o", "json", "--kubeconfig", kc, "--probe", "runtime", "--probe", "services")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (error findings); stderr: %s\n%s", code, stderr, stdout)
	}
	for _, probe := range []string{`"probe": "runtime"`, `"probe": "services"`} {
		if !strings.Contains(stdout, probe) {
			t.Errorf("no finding from %s", probe)
		}
	}
	if !strings.Contains(stdout, `"status": "error"`) || !strings.Contains(stdout, "list") || !strings.Contains(stdout, "pods") {
		t.Errorf("want error findings naming the missing permission (list pods):\n%s", stdout)
	}
	if !strings.Contains(stdout, "kubectl auth can-i") && !strings.Contains(stdout, "ClusterRole") {
		t.Errorf("error findings carry no RBAC fix:\n%s", stdout)
	}
	after, err := kube.CoreV1().Namespaces().List(ctxT(t, 10*time.Second), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	had := map[string]bool{}
	for _, n := range before.Items {
		had[n.Name] = true
	}
	for _, n := range after.Items {
		if !had[n.Name] {
			t.Errorf("a forbidden run created namespace %s", n.Name)
		}
	}
}

// TestBadInputAgainstLab: configuration errors exit 2 with one sentence and
// never reach the probes.
func TestBadInputAgainstLab(t *testing.T) {
	garbled := filepath.Join(t.TempDir(), "garbled")
	if err := os.WriteFile(garbled, []byte("apiVersion: v1\nclusters: [oops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]string{
		"unknown context":        {"check", "--kubeconfig", kubeconfig, "--context", "nope"},
		"garbled kubeconfig":     {"check", "--kubeconfig", garbled},
		"missing kubeconfig":     {"check", "--kubeconfig", filepath.Join(t.TempDir(), "absent")},
		"API server unreachable": {"check", "--kubeconfig", kubeconfig, "--server", "https://127.0.0.1:1"},
		"unknown probe":          {"check", "--kubeconfig", kubeconfig, "--probe", "nope"},
		"bad output":             {"check", "--kubeconfig", kubeconfig, "-o", "xml"},
		"negative timeout":       {"check", "--kubeconfig", kubeconfig, "--timeout", "-1s"},
		// Bad probe inputs: refused from the probes' declared inputs before
		// the API is asked, so no agent is started on any node.
		"target not an IP":          {"check", "--kubeconfig", kubeconfig, "--probe", "external", "--target", "notanip!"},
		"target octet out of range": {"check", "--kubeconfig", kubeconfig, "--probe", "external", "--target", "999.1.1.1"},
		"negative max-pairs":        {"check", "--kubeconfig", kubeconfig, "--probe", "pod-to-pod", "--max-pairs", "-3"},
		"unknown port profile":      {"check", "--kubeconfig", kubeconfig, "--probe", "node-ports", "--port-profile", "nope"},
		"policy from not a pod":     {"check", "--kubeconfig", kubeconfig, "--probe", "policy", "--from", "bad", "--to", "default/x:80"},
		"policy to port too big":    {"check", "--kubeconfig", kubeconfig, "--probe", "policy", "--from", "default/x", "--to", "c/d:99999"},
		"service not ns/name":       {"check", "--kubeconfig", kubeconfig, "--probe", "pod-to-service", "--service", "web"},
		"trace max-pairs":           {"trace", "default/x", "default/y:80", "--kubeconfig", kubeconfig, "--max-pairs", "-3"},
	}
	exclusive(t) // no other run may create agents while the watch below looks
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			created := watchManaged(t)
			stdout, stderr, code := netsleuthCmd(t, args...)
			if got := created(); len(got) > 0 {
				t.Errorf("a usage error created %s", strings.Join(got, ", "))
			}
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, stderr)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; strings.TrimSpace(stderr) == "" || lines != 1 {
				t.Errorf("want one sentence on stderr, got %d lines: %q", lines, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout should be empty on a config error, got %q", stdout)
			}
		})
	}
}

// watchManaged watches the namespaces and pods netsleuth labels from now on;
// the function it returns stops the watch and lists what was added.
func watchManaged(t *testing.T) func() []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	opts := metav1.ListOptions{LabelSelector: managedSel}
	nsl, err := kube.CoreV1().Namespaces().List(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	pl, err := kube.CoreV1().Pods("").List(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	nsw, err := kube.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{LabelSelector: managedSel, ResourceVersion: nsl.ResourceVersion})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	pw, err := kube.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{LabelSelector: managedSel, ResourceVersion: pl.ResourceVersion})
	if err != nil {
		nsw.Stop()
		cancel()
		t.Fatal(err)
	}
	var mu sync.Mutex
	var added []string
	var wg sync.WaitGroup
	for _, w := range []watch.Interface{nsw, pw} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range w.ResultChan() {
				if ev.Type != watch.Added {
					continue
				}
				if o, ok := ev.Object.(metav1.Object); ok {
					mu.Lock()
					added = append(added, fmt.Sprintf("%T %s/%s", ev.Object, o.GetNamespace(), o.GetName()))
					mu.Unlock()
				}
			}
		}()
	}
	return func() []string {
		time.Sleep(2 * time.Second) // let a create that raced the exit arrive
		nsw.Stop()
		pw.Stop()
		wg.Wait()
		cancel()
		mu.Lock()
		defer mu.Unlock()
		return added
	}
}
