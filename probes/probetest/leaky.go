// Package probetest holds a probe for the tests of what a run's outputs do
// with its findings: Leaky quotes secrets the way a probe could (a
// ConfigMap with a private key, a token in a pod's command, a kubeconfig
// credential, an agent's stderr), and every report and the TUI must show
// none of them.
package probetest

import (
	"context"
	"errors"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
)

// The secrets Leaky quotes.
const (
	JWT      = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImxlYWt5In0.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZS1zeXN0ZW06aXAtbWFzcSJ9.bGVha3ktc2lnbmF0dXJl"
	PEMBody  = "MHcCAQEEIKeYlEaKyPrIvAtEkEyBoDyFoRtEsTsOnLyAbCdEfGhIjKlMn"
	KeyData  = "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUtleQ=="
	Password = "hunter2-leaky-password"
	Opaque   = "opaque-bearer-0123456789abcdef"
)

// Secrets are the values none of a run's outputs may contain.
var Secrets = []string{JWT, PEMBody, KeyData, Password, Opaque}

// PEM is a private key as a ConfigMap would hold it.
const PEM = "-----BEGIN EC PRIVATE KEY-----\n" + PEMBody + "\n-----END EC PRIVATE KEY-----"

// Leaky records one finding quoting every secret, in every text field, and
// then fails with an agent's stderr quoting a bearer token (a runner.error
// finding).
type Leaky struct{}

// ID is Leaky's probe ID.
const ID = "leaky"

func (Leaky) Info() model.ProbeInfo {
	return model.ProbeInfo{ID: ID, Title: "A probe that quotes secrets", Scenario: "Z", Default: true}
}

func (Leaky) Run(_ context.Context, _ *probes.Env, rec probes.Recorder) error {
	rec.Stage("reading the agent's kubeconfig (token: " + JWT + ")")
	evidence := append([]string{"ConfigMap kube-system/ip-masq-agent config:"}, strings.Split(PEM, "\n")...)
	rec.Finding(model.Finding{
		ID: "leaky.quotes-secrets", Status: model.StatusFail,
		Subject:   &model.Subject{Kind: "ConfigMap", Namespace: "kube-system", Name: "ip-masq-agent"},
		Title:     "ip-masq-agent runs with API_TOKEN=" + JWT,
		RootCause: "The agent logs in to https://admin:" + Password + "@10.250.0.1:6443 with its private key " + PEM + ".",
		Evidence: append(evidence,
			"DaemonSet kube-system/ip-masq-agent: args sh -c API_TOKEN="+JWT+" exec /ip-masq-agent",
			"kubeconfig user: client-key-data: "+KeyData,
			`curl -H "Authorization: Bearer `+Opaque+`"`),
		Fixes: []model.Fix{{
			Description: "Rotate the agent's credential (password=" + Password + ")",
			Commands:    []string{"kubectl -n kube-system create secret generic x --from-literal=token=" + JWT},
			Manifest:    "apiVersion: v1\nkind: Secret\ndata:\n  tls.key: " + KeyData + "\n",
		}},
		References: []string{"https://user:" + Password + "@docs.example/ip-masq"},
	})
	return errors.New("exec into kube-system/agent: command terminated with exit code 1 (stderr: Authorization: Bearer " + Opaque + ")")
}

// Leaks returns the secrets s contains.
func Leaks(s string) []string {
	var out []string
	for _, v := range Secrets {
		if strings.Contains(s, v) {
			out = append(out, v)
		}
	}
	return out
}
