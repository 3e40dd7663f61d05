package cmd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
)

const fuzzKubeconfig = "apiVersion: v1\nkind: Config\ncurrent-context: lab\nclusters:\n- name: lab\n  cluster:\n    server: https://127.0.0.1:6443\n" +
	"contexts:\n- name: lab\n  context:\n    cluster: lab\n    user: me\n    namespace: shop\nusers:\n- name: me\n  user:\n    token: secret\n"

// FuzzKubeconfig writes arbitrary bytes as the kubeconfig file and runs the
// loading half of connect (RawConfig, then ClientConfig), with or without
// --context, stopping before the version call: nothing is dialled. A file
// that does not load is a usage error with a one-line message; one that
// loads and defines a cluster yields a config with a server.
func FuzzKubeconfig(f *testing.F) {
	f.Add([]byte(fuzzKubeconfig), "")
	f.Add([]byte(fuzzKubeconfig), "other")
	f.Add([]byte(strings.Replace(fuzzKubeconfig, "    token: secret\n", "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: netsleuth-no-such-plugin\n      interactiveMode: Never\n", 1)), "lab")
	f.Add([]byte(strings.Replace(fuzzKubeconfig, "    server: https://127.0.0.1:6443\n", "    server: https://127.0.0.1:6443\n    certificate-authority-data: bm90IGEgY2VydA==\n    insecure-skip-tls-verify: true\n", 1)), "")
	f.Add([]byte(`{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":""}}],"contexts":[{"name":"x","context":{"cluster":"c"}}],"current-context":"x"}`), "")
	f.Add([]byte("clusters: [\n"), "")
	f.Add([]byte(""), "")
	os.Unsetenv("KUBERNETES_SERVICE_HOST") // no in-cluster fallback
	f.Fuzz(func(t *testing.T, data []byte, context string) {
		path := filepath.Join(t.TempDir(), "kubeconfig")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		flags := genericclioptions.NewConfigFlags(true)
		flags.KubeConfig = &path
		if context != "" {
			flags.Context = &context
		}
		loader := flags.ToRawKubeConfigLoader()
		raw, err := loader.RawConfig()
		if err != nil {
			checkUsageError(t, kubeconfigError(flags, err))
			return
		}
		if len(raw.Clusters) == 0 {
			return // connect stops here with its own usage error
		}
		cfg, err := loader.ClientConfig()
		if err != nil {
			checkUsageError(t, kubeconfigError(flags, err))
			return
		}
		if cfg.Host == "" {
			t.Fatalf("the kubeconfig loads with no server:\n%s", data)
		}
	})
}

func checkUsageError(t *testing.T, err error) {
	t.Helper()
	var e *exitError
	if !errors.As(err, &e) || e.code != ExitUsage {
		t.Fatalf("%v is not a usage error", err)
	}
	if e.msg == "" || strings.ContainsAny(e.msg, "\n\r") {
		t.Fatalf("message %q is not one line", e.msg)
	}
}
