//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/ipmasq"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
)

// labSecrets are credentials of the lab: a real service-account token, a
// private key, a password, and the password of the kubeconfig's server URL.
type labSecrets struct {
	token, key, password, urlPassword string
}

// values are the strings no output may contain: each secret, and each line
// of the key's body on its own (a key can be quoted line by line).
func (s labSecrets) values() []string {
	out := []string{s.token, s.password, s.urlPassword}
	for _, l := range strings.Split(s.key, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

func newLabSecrets(t *testing.T, ns string) labSecrets {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	sa, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ip-masq-agent"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	random := func() string {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	return labSecrets{token: tok.Status.Token, key: string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})),
		password: "pw-" + random(), urlPassword: "url-" + random()}
}

// ipMasqLeaks puts the secrets where the ipmasq probe quotes them, as
// someone might have: the agent's ConfigMap with the key and a password
// pasted in (keys the agent does not know), and its DaemonSet starting it
// through a shell with the token in an environment variable. The DaemonSet
// selects no node, so no ip-masq-agent ever runs in the lab.
func ipMasqLeaks(t *testing.T, ns string, s labSecrets) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ip-masq-agent-credentials", Namespace: ns},
		StringData: map[string]string{"token": s.token, "tls.key": s.key, "password": s.password}}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var cidrs []string
	for _, n := range []string{"nsl-node1", "nsl-node2"} {
		cidrs = append(cidrs, "  - "+podCIDR(t, n))
	}
	indented := "  " + strings.ReplaceAll(strings.TrimSpace(s.key), "\n", "\n  ")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ipmasq.Name, Namespace: ipmasq.Namespace},
		Data: map[string]string{"config": "nonMasqueradeCIDRs:\n" + strings.Join(cidrs, "\n") + "\nmasqLinkLocal: false\n" +
			"clientKey: |\n" + indented + "\npassword: " + s.password + "\n"}}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: ipmasq.Name, Namespace: ipmasq.Namespace},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "e2e-ip-masq-agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "e2e-ip-masq-agent"}},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"netsleuth.dev/e2e-no-such-node": "true"},
					Containers: []corev1.Container{{Name: "ip-masq-agent", Image: labImage,
						Command: []string{"/bin/sh", "-c", "API_TOKEN=" + s.token + " exec /ip-masq-agent --masq-chain=IP-MASQ --v=2"},
						Env: []corev1.EnvVar{{Name: "API_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: secret.Name}, Key: "password"}}}},
					}},
				}}}}
	if _, err := kube.CoreV1().ConfigMaps(ipmasq.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().ConfigMaps(ipmasq.Namespace).Delete(ctxT(t, 10*time.Second), cm.Name, metav1.DeleteOptions{})
	})
	if _, err := kube.AppsV1().DaemonSets(ipmasq.Namespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.AppsV1().DaemonSets(ipmasq.Namespace).Delete(ctxT(t, 10*time.Second), ds.Name, metav1.DeleteOptions{})
	})
}

// kubeconfigWithURLPassword is the lab's kubeconfig with a password in the
// server URL (the client certificate still authenticates).
func kubeconfigWithURLPassword(t *testing.T, password string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = strings.Replace(c.Server, "https://", "https://admin:"+password+"@", 1)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReportsRedactSecrets: the lab holds a Secret whose values were copied
// where the ipmasq probe quotes them (its ConfigMap and its DaemonSet's
// command), and the kubeconfig has a password in its server URL. The probe
// run directly (no runner, so no redaction) quotes every secret; netsleuth
// check prints none of them in any format, on stdout or stderr, and its
// findings still say what was there.
func TestReportsRedactSecrets(t *testing.T) {
	exclusive(t) // the ip-masq-agent ConfigMap and DaemonSet are the cluster's
	ns := namespace(t, nil)
	s := newLabSecrets(t, ns)
	ipMasqLeaks(t, ns, s)

	var raw kubetest.Recorder
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ipmasq.New().Run(ctx, &probes.Env{Kube: kube}, &raw); err != nil {
		t.Fatal(err)
	}
	quoted, _ := json.Marshal(raw.Findings)
	for _, v := range []string{s.token, s.password, strings.Split(s.key, "\n")[1]} {
		if !strings.Contains(string(quoted), v) {
			t.Fatalf("the fixture is wrong: the ipmasq probe does not quote %.20q… in its findings: %s", v, quoted)
		}
	}

	kc := kubeconfigWithURLPassword(t, s.urlPassword)
	for _, format := range []string{"json", "text", "yaml", "junit"} {
		stdout, stderr, code := netsleuthCmd(t, "check", "--kubeconfig", kc, "--probe", "ipmasq", "-o", format)
		if code == 2 {
			t.Fatalf("-o %s: exit 2: %s", format, stderr)
		}
		// YAML and the text report fold long lines at spaces: look in the
		// output as printed and with its lines unfolded.
		folded := strings.Join(strings.Fields(stdout+"\n"+stderr), " ")
		for _, v := range s.values() {
			if strings.Contains(stdout+stderr, v) || strings.Contains(folded, v) {
				t.Errorf("-o %s prints the secret %.20q…:\n%s\n%s", format, v, stdout, stderr)
			}
		}
		for _, want := range []string{"-----BEGIN EC PRIVATE KEY-----" + model.Redacted + "-----END EC PRIVATE KEY-----",
			"password: " + model.Redacted, "API_TOKEN=" + model.Redacted, "ip-masq-agent config has unknown key(s) clientKey, password"} {
			if !strings.Contains(folded, want) {
				t.Errorf("-o %s does not say what was redacted (%q):\n%s", format, want, stdout)
			}
		}
		if format == "text" {
			for _, l := range strings.Split(stdout, "\n") {
				if strings.Contains(l, model.Redacted) {
					t.Logf("-o text: %s", strings.TrimSpace(l))
				}
			}
		}
		if format != "json" {
			continue
		}
		var r model.Report
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatal(err)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("report: %v", err)
		}
		if want := "https://admin:" + model.Redacted + "@10.250.0.1:6443"; r.Cluster.Server != want {
			t.Errorf("cluster server %q, want %q", r.Cluster.Server, want)
		}
		find(t, &r, want{id: "ipmasq.unknown-key", status: "warn", subject: "ConfigMap/kube-system/ip-masq-agent"})
	}
}
