package model

import (
	"reflect"
	"strings"
	"testing"
)

// Secrets of the tests: a service-account token, a private key, a
// kubeconfig's client key and a password.
const (
	saToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5zbCJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50Iiwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50OmRlZmF1bHQ6ZGVmYXVsdCJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
	pemKey  = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBv1rSEcReTkEyMaTeRiAlNoTrEaLbUtLoNgEnOuGhToMaTcH\noAoGCCqGSM49AwEHoUQDQgAE\n-----END EC PRIVATE KEY-----"
	keyData = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB"
)

var redactCases = []struct {
	name, in, want string
}{
	{"PEM private key", "config: tlsKey: |\n" + pemKey + "\nnonMasqueradeCIDRs: []",
		"config: tlsKey: |\n-----BEGIN EC PRIVATE KEY-----[redacted]-----END EC PRIVATE KEY-----\nnonMasqueradeCIDRs: []"},
	{"PEM folded onto one line", "ConfigMap kube-system/ip-masq-agent config: key: -----BEGIN CERTIFICATE----- MIIBszCCAVmgAwIBAgIU -----END CERTIFICATE----- masqLinkLocal: false",
		"ConfigMap kube-system/ip-masq-agent config: key: -----BEGIN CERTIFICATE-----[redacted]-----END CERTIFICATE----- masqLinkLocal: false"},
	{"PEM cut short", "first 10 lines: -----BEGIN RSA PRIVATE KEY----- MIIEowIBAAKCAQEA",
		"first 10 lines: -----BEGIN RSA PRIVATE KEY-----[redacted]"},
	{"two PEM blocks", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----",
		"-----BEGIN CERTIFICATE-----[redacted]-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----[redacted]-----END CERTIFICATE-----"},
	{"kubeconfig client-key-data", "users:\n- name: admin\n  user:\n    client-key-data: " + keyData + "\n    client-certificate: /home/me/.kube/admin.crt",
		"users:\n- name: admin\n  user:\n    client-key-data: [redacted]\n    client-certificate: /home/me/.kube/admin.crt"},
	{"base64 PEM without its key", `"data":{"tls.key":"` + keyData + `"}`, `"data":{"tls.key":"[redacted]"}`},
	{"kubeconfig token", "user:\n  token: 0123456789abcdefXYZ\n  tokenFile: /var/run/secrets/token", "user:\n  token: [redacted]\n  tokenFile: /var/run/secrets/token"},
	{"kubeconfig password", "user:\n  username: admin\n  password: \"hunter2 with spaces\"", "user:\n  username: admin\n  password: [redacted]"},
	{"service-account JWT", "exec into pod failed: token " + saToken + " expired", "exec into pod failed: token [redacted] expired"},
	{"JWT in an env assignment", "args sh -c API_TOKEN=" + saToken + " exec /ip-masq-agent", "args sh -c API_TOKEN=[redacted] exec /ip-masq-agent"},
	{"bearer header", `curl -H "Authorization: Bearer s3cr3t-opaque-token-value" https://10.96.0.1/`, `curl -H "Authorization: Bearer [redacted]" https://10.96.0.1/`},
	{"basic header", "Authorization: Basic dXNlcjpodW50ZXIy", "Authorization: Basic [redacted]"},
	{"URL password", "cannot reach the API server at https://admin:hunter2@10.250.0.1:6443: connection refused",
		"cannot reach the API server at https://admin:[redacted]@10.250.0.1:6443: connection refused"},
	{"JSON credential", `{"apiKey":"AbCdEf123456","name":"x"}`, `{"apiKey":[redacted],"name":"x"}`},
	{"flag with =", "kube-apiserver --token-auth-file=/etc/tokens.csv --oidc-client-secret=abc123 --v=2", "kube-apiserver --token-auth-file=/etc/tokens.csv --oidc-client-secret=[redacted] --v=2"},
	{"flag with a space", "agent --password hunter2 --v 2", "agent --password [redacted] --v 2"},
	{"AWS keys", "aws_access_key_id=AKIAIOSFODNN7EXAMPLE aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"aws_access_key_id=[redacted] aws_secret_access_key=[redacted]"},
	{"bootstrap token", "kubeadm join 10.0.0.1:6443 --discovery-token-ca-cert-hash sha256:abc --token abcdef.0123456789abcdef",
		"kubeadm join 10.0.0.1:6443 --discovery-token-ca-cert-hash sha256:abc --token [redacted]"},
	{"Secret value by key", "stringData: db-password: s3cr3t", "stringData: db-password: [redacted]"},
	// Kept: paths to credentials, and text that only talks about them.
	{"kubelet key paths", "tlsPrivateKeyFile: /var/lib/kubelet/pki/kubelet.key tlsCertFile: /var/lib/kubelet/pki/kubelet.crt",
		"tlsPrivateKeyFile: /var/lib/kubelet/pki/kubelet.key tlsCertFile: /var/lib/kubelet/pki/kubelet.crt"},
	{"kubelet key flags", "--tls-private-key-file=/etc/kubernetes/pki/k.key --client-ca-file=/etc/ca.crt", "--tls-private-key-file=/etc/kubernetes/pki/k.key --client-ca-file=/etc/ca.crt"},
	{"kubeconfig client-key path", "client-key: /home/me/.kube/admin.key", "client-key: /home/me/.kube/admin.key"},
	{"prose", "log in again or renew the token or client certificate of context \"lab\"", "log in again or renew the token or client certificate of context \"lab\""},
	{"iptables comment", `-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -j KUBE-SVC-TCOU7JCQXEZGVUNU`,
		`-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -j KUBE-SVC-TCOU7JCQXEZGVUNU`},
	{"iptables comment with a token", `-A INPUT -m comment --comment "token=0f9e8d7c6b5a" -j ACCEPT`, `-A INPUT -m comment --comment "token=[redacted]" -j ACCEPT`},
	{"URL without a password", "https://10.250.0.1:6443/api/v1/nodes/nsl-node1/proxy/configz", "https://10.250.0.1:6443/api/v1/nodes/nsl-node1/proxy/configz"},
	{"Corefile", "forward . 10.250.0.53:53 { max_concurrent 1000 }", "forward . 10.250.0.53:53 { max_concurrent 1000 }"},
}

func TestRedact(t *testing.T) {
	for _, c := range redactCases {
		t.Run(c.name, func(t *testing.T) {
			got := Redact(c.in)
			if got != c.want {
				t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
			if again := Redact(got); again != got {
				t.Errorf("not idempotent: %q became %q", got, again)
			}
		})
	}
}

func TestRedactLinesFollowsAPEMBlockAcrossLines(t *testing.T) {
	in := append([]string{"ConfigMap kube-system/x data:"}, strings.Split(pemKey, "\n")...)
	in = append(in, "effective nonMasqueradeCIDRs: 10.0.0.0/8")
	got := RedactLines(in)
	want := []string{"ConfigMap kube-system/x data:", "-----BEGIN EC PRIVATE KEY-----[redacted]", "[redacted]", "[redacted]",
		"-----END EC PRIVATE KEY-----", "effective nonMasqueradeCIDRs: 10.0.0.0/8"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if again := RedactLines(got); !reflect.DeepEqual(again, got) {
		t.Errorf("not idempotent: %q", again)
	}
	// A block whose end was not quoted is redacted to the last line.
	cut := RedactLines([]string{"-----BEGIN CERTIFICATE-----", "MIIB", "MIIC"})
	if !reflect.DeepEqual(cut, []string{"-----BEGIN CERTIFICATE-----[redacted]", "[redacted]", "[redacted]"}) {
		t.Errorf("cut short: %q", cut)
	}
	if RedactLines(nil) != nil {
		t.Error("nil lines became non-nil")
	}
}

// TestFindingRedacted: every text of a finding is redacted; what identifies
// it is kept.
func TestFindingRedacted(t *testing.T) {
	subj := &Subject{Kind: "ConfigMap", Namespace: "kube-system", Name: "ip-masq-agent"}
	f := Finding{Probe: "ipmasq", ID: "ipmasq.unknown-key", Status: StatusWarn, Subject: subj,
		Title:      "config has key token: " + saToken,
		RootCause:  "the agent logs in with password=hunter2",
		Evidence:   []string{"config:", "-----BEGIN PRIVATE KEY-----", "MIIEvQ", "-----END PRIVATE KEY-----"},
		Fixes:      []Fix{{Description: "rotate Bearer abcdefgh12345678", Commands: []string{"kubectl -n x create secret generic y --from-literal=password=hunter2"}, Manifest: "data:\n  token: " + saToken}},
		References: []string{"https://user:pw@docs.example/x"},
		Key:        "ipmasq.unknown-key|ConfigMap/kube-system/ip-masq-agent", CausedBy: ""}
	g := f.Redacted()
	for _, s := range []string{saToken, "hunter2", "MIIEvQ", "abcdefgh12345678", ":pw@"} {
		if strings.Contains(g.Title+g.RootCause+strings.Join(g.Evidence, "")+g.Fixes[0].Description+strings.Join(g.Fixes[0].Commands, "")+g.Fixes[0].Manifest+strings.Join(g.References, ""), s) {
			t.Errorf("%q survived: %+v", s, g)
		}
	}
	if g.ID != f.ID || g.Key != f.Key || g.Subject != f.Subject || g.Status != f.Status || g.Probe != f.Probe {
		t.Errorf("identity changed: %+v", g)
	}
	if !strings.Contains(g.Title, "token: [redacted]") || g.Evidence[1] != "-----BEGIN PRIVATE KEY-----[redacted]" {
		t.Errorf("the finding no longer says what was redacted: %+v", g)
	}
	if f.Fixes[0].Manifest == g.Fixes[0].Manifest {
		t.Error("the manifest was not redacted")
	}
	if f.Evidence[2] != "MIIEvQ" {
		t.Error("Redacted changed the finding it was called on")
	}
	if err := g.Validate(); err != nil {
		t.Errorf("a redacted finding does not validate: %v", err)
	}
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "carries a secret") {
		t.Errorf("a finding with a secret validates: %v", err)
	}
}

// FuzzRedact: Redact is idempotent, keeps text without secrets (no
// redaction marker appears from nowhere but where a secret was), and no
// PEM body survives between a BEGIN and an END line.
func FuzzRedact(f *testing.F) {
	for _, c := range redactCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := Redact(s)
		if again := Redact(r); again != r {
			t.Fatalf("not idempotent:\n  in %q\n out %q\nagain %q", s, r, again)
		}
		lines := RedactLines(strings.Split(s, "\n"))
		if again := RedactLines(lines); !reflect.DeepEqual(again, lines) {
			t.Fatalf("lines not idempotent:\n out %q\nagain %q", lines, again)
		}
		for _, b := range pemHeader.FindAllStringIndex(r, -1) {
			body := r[b[1]:]
			if e := pemFooter.FindStringIndex(r[b[0]+1:]); e != nil {
				body = r[b[1]:max(b[1], b[0]+1+e[0])]
			}
			if body != "" && body != Redacted {
				t.Fatalf("PEM body %q kept after %q: %q", body, r[b[0]:b[1]], r)
			}
		}
	})
}
