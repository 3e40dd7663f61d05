//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	if len(after.Items) != len(before.Items) {
		t.Errorf("namespaces went from %d to %d: a forbidden run created something", len(before.Items), len(after.Items))
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
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := netsleuthCmd(t, args...)
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
