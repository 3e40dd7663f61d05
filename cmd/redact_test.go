package cmd

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/model"
)

// jwt is a service-account token a kubeconfig may carry.
const jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImNtZCJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpjaSJ9.Y21kLXRlc3Qtc2lnbmF0dXJl"

// kubeconfigWith writes a kubeconfig whose cluster entry is cluster and
// whose user logs in with token.
func kubeconfigWith(t *testing.T, cluster, token string) string {
	t.Helper()
	cfg := "apiVersion: v1\nkind: Config\ncurrent-context: lab\nclusters:\n- name: lab\n  cluster:\n" + cluster +
		"contexts:\n- name: lab\n  context:\n    cluster: lab\n    user: me\nusers:\n- name: me\n  user:\n    token: " + token + "\n"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKubeconfigSecretsAreNotPrinted: the sentences netsleuth prints about
// the kubeconfig and the API server, and the report's cluster, never show a
// password in the server URL or a token the server echoes back.
func TestKubeconfigSecretsAreNotPrinted(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	// A proxy in front of the API server that fails and echoes the request.
	echo := newTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, "upstream failed for request with Authorization: %s", r.Header.Get("Authorization"))
	}))
	defer echo.Close()
	api := newTLSServer(http.HandlerFunc(versionHandler))
	defer api.Close()
	withPassword := strings.Replace(api.URL, "https://", "https://me:hunter2pw@", 1)
	trusted := trustedCluster(api)
	trusted = strings.Replace(trusted, api.URL, withPassword, 1)

	r := run(t, "netsleuth", "check", "--kubeconfig", kubeconfigWith(t, "    server: https://me:hunter2pw@"+closed+"\n", jwt))
	wantUsage(t, r, "cannot reach the API server at https://me:[redacted]@"+closed+": connection refused")
	r = run(t, "netsleuth", "check", "--kubeconfig", kubeconfigWith(t, trustedCluster(echo), jwt))
	wantUsage(t, r, "Authorization: Bearer [redacted]")
	r2 := run(t, "netsleuth", "check", "--kubeconfig", kubeconfigWith(t, trusted, jwt), "-o", "json")
	var rep model.Report
	if err := json.Unmarshal([]byte(r2.out), &rep); err != nil {
		t.Fatalf("exit %d, stderr %q: %v", r2.code, r2.errOut, err)
	}
	if want := strings.Replace(api.URL, "https://", "https://me:[redacted]@", 1); rep.Cluster.Server != want {
		t.Errorf("report cluster server %q, want %q", rep.Cluster.Server, want)
	}
	for _, out := range []string{r.out, r.errOut, r2.out, r2.errOut} {
		if strings.Contains(out, jwt) || strings.Contains(out, "hunter2pw") {
			t.Errorf("a secret is printed: %q", out)
		}
	}
}
