package cmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
)

// fakeProbe records its status and counts its runs, without touching the cluster.
type fakeProbe struct {
	id, title string
	status    model.Status
	def       bool
	runs      *atomic.Int32
}

func (p fakeProbe) Info() model.ProbeInfo {
	return model.ProbeInfo{ID: p.id, Title: p.title, Scenario: "Z", Default: p.def,
		RBAC: []model.Permission{{Resource: "pods", Verbs: []string{"list"}}}}
}

func (p fakeProbe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	p.runs.Add(1)
	f := model.Finding{ID: p.id + "-verdict", Status: p.status, Title: p.title}
	if p.status != model.StatusPass {
		f.RootCause, f.Fixes = "it is broken", []model.Fix{{Description: "fix it"}}
	}
	rec.Finding(f)
	return nil
}

type result struct {
	code        int
	out, errOut string
	runs        int32
}

// run executes the command line in-process against a fake catalogue of a
// passing default probe "ok" and a failing non-default probe "bad".
func run(t *testing.T, argv0 string, args ...string) result {
	t.Helper()
	var runs atomic.Int32
	cat := func() []probes.Probe {
		return []probes.Probe{
			fakeProbe{id: "ok", title: "All good", status: model.StatusPass, def: true, runs: &runs},
			fakeProbe{id: "bad", title: "Broken thing", status: model.StatusFail, runs: &runs},
		}
	}
	var out, errOut bytes.Buffer
	app := App{Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Probes: cat, Argv0: argv0}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Execute(ctx, app, args)
	return result{code: code, out: out.String(), errOut: errOut.String(), runs: runs.Load()}
}

// wantUsage asserts exit 2, one line on stderr containing want, and no probe run.
func wantUsage(t *testing.T, r result, want string) {
	t.Helper()
	t.Log(strings.TrimSpace(r.errOut))
	if r.code != ExitUsage {
		t.Errorf("exit code = %d, want %d (stderr %q)", r.code, ExitUsage, r.errOut)
	}
	msg := strings.TrimSuffix(r.errOut, "\n")
	if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "netsleuth: ") {
		t.Errorf("stderr is not one line starting with the command name: %q", r.errOut)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("stderr %q does not contain %q", msg, want)
	}
	if r.runs != 0 {
		t.Errorf("%d probes ran on a usage error", r.runs)
	}
}

// kubeconfig writes a kubeconfig for server with context "lab" and returns its path.
func kubeconfig(t *testing.T, server string, cluster string) string {
	t.Helper()
	if cluster == "" {
		cluster = "    server: " + server + "\n"
	}
	cfg := "apiVersion: v1\nkind: Config\ncurrent-context: lab\nclusters:\n- name: lab\n  cluster:\n" + cluster +
		"contexts:\n- name: lab\n  context:\n    cluster: lab\n    user: me\nusers:\n- name: me\n  user:\n    token: secret\n"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMain(m *testing.M) {
	// Never fall back to the developer's own kubeconfig.
	os.Setenv("KUBECONFIG", filepath.Join(os.TempDir(), "netsleuth-test-no-such-kubeconfig"))
	os.Exit(m.Run())
}

func TestFlagErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown probe", []string{"check", "--probe", "nope"}, `unknown probe "nope"; run` + " `netsleuth probes`"},
		{"bad output", []string{"check", "-o", "xml"}, `unknown output format "xml"`},
		{"negative timeout", []string{"check", "--timeout=-1s"}, "--timeout must not be negative"},
		{"negative probe timeout", []string{"check", "--probe-timeout=-5s"}, "--probe-timeout must not be negative"},
		{"zero parallel", []string{"check", "--parallel=0"}, "--parallel must be at least 1"},
		{"zero max-nodes", []string{"check", "--max-nodes=0"}, "--max-nodes must be at least 1"},
		{"unknown flag", []string{"check", "--frobnicate"}, "unknown flag: --frobnicate"},
		{"bad duration", []string{"check", "--timeout=soon"}, `invalid argument "soon"`},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"root bad output", []string{"-o", "xml"}, `unknown output format "xml"`},
		{"bad target", []string{"check", "--target", "999.1.1.1"}, `--target "999.1.1.1" is not a valid IPv4 address; pass an IPv4 address`},
		{"target port out of range", []string{"check", "--target", "10.0.0.1:99999"}, `has port "99999"; a port is 1-65535`},
		{"target no probe takes", []string{"check", "--target", "10.0.0.1"}, `--target "10.0.0.1" is an IP or CIDR and no selected probe takes one`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantUsage(t, run(t, "netsleuth", tc.args...), tc.want) })
	}
}

func TestKubeconfigErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent")
	garbled := filepath.Join(t.TempDir(), "garbled")
	if err := os.WriteFile(garbled, []byte("{{{ this: is: not yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := kubeconfig(t, "https://127.0.0.1:1", "")
	wantUsage(t, run(t, "netsleuth", "check", "--kubeconfig", missing), "does not exist; pass --kubeconfig")
	t.Setenv("HOME", t.TempDir()) // no ~/.kube/config, and KUBECONFIG names no file
	wantUsage(t, run(t, "netsleuth", "check"), "no kubeconfig found")
	wantUsage(t, run(t, "netsleuth", "check", "--kubeconfig", garbled), "cannot load the kubeconfig")
	wantUsage(t, run(t, "netsleuth", "check", "--kubeconfig", good, "--context", "nope"), `context "nope" is not in the kubeconfig`)
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	server := "https://" + addr
	r := run(t, "netsleuth", "check", "--kubeconfig", kubeconfig(t, server, ""))
	wantUsage(t, r, "cannot reach the API server at "+server+": connection refused; check that the cluster is running")
}

func TestTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold the connection open and never answer
		}
	}()
	start := time.Now()
	r := run(t, "netsleuth", "check", "--kubeconfig", kubeconfig(t, "https://"+l.Addr().String(), ""), "--request-timeout=1s")
	wantUsage(t, r, "did not answer within 1s")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timing out took %s, want about 1s", d)
	}
}

func TestTLSUnknownAuthority(t *testing.T) {
	srv := newTLSServer(http.HandlerFunc(versionHandler))
	defer srv.Close()
	r := run(t, "netsleuth", "check", "--kubeconfig", kubeconfig(t, srv.URL, ""))
	wantUsage(t, r, "cannot verify the TLS certificate of the API server at "+srv.URL+" (certificate signed by unknown authority)")
}

func TestCredentialsRejected(t *testing.T) {
	srv := newTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
	}))
	defer srv.Close()
	r := run(t, "netsleuth", "check", "--kubeconfig", kubeconfig(t, srv.URL, trustedCluster(srv)))
	wantUsage(t, r, "rejected the credentials (401 Unauthorized)")
}

func versionHandler(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/version" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"major":"1","minor":"36","gitVersion":"v1.36.3"}`)
}

// trustedCluster is a kubeconfig cluster entry that trusts srv's certificate.
func trustedCluster(srv *httptest.Server) string {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return fmt.Sprintf("    server: %s\n    certificate-authority-data: %s\n", srv.URL, b64(ca))
}

func TestCheckExitCodes(t *testing.T) {
	srv := newTLSServer(http.HandlerFunc(versionHandler))
	defer srv.Close()
	kc := kubeconfig(t, srv.URL, trustedCluster(srv))

	r := run(t, "netsleuth", "check", "--kubeconfig", kc, "-o", "json")
	if r.code != ExitOK || r.runs != 1 {
		t.Fatalf("default probes: code %d, runs %d, stderr %q; want 0 and 1 run", r.code, r.runs, r.errOut)
	}
	var rep model.Report
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, r.out)
	}
	if err := rep.Validate(); err != nil {
		t.Errorf("report does not validate: %v", err)
	}
	if rep.Cluster != (model.Cluster{Context: "lab", Server: srv.URL, Version: "v1.36.3"}) {
		t.Errorf("cluster = %+v", rep.Cluster)
	}

	r = run(t, "netsleuth", "check", "--kubeconfig", kc, "--probe", "bad", "--probe", "ok")
	if r.code != ExitFailing || r.runs != 2 || !strings.Contains(r.out, "FAIL") {
		t.Errorf("failing probe: code %d, runs %d, want 1 and 2 runs; stdout:\n%s", r.code, r.runs, r.out)
	}
	r = run(t, "netsleuth", "--kubeconfig", kc) // not a terminal: behaves like check
	if r.code != ExitOK || !strings.HasPrefix(r.out, "netsleuth report: context lab") {
		t.Errorf("bare command off a terminal: code %d, stdout:\n%s", r.code, r.out)
	}
	r = run(t, "netsleuth", "--kubeconfig", kc, "--probe", "bad", "--exit-zero-on-failure", "-o", "junit")
	if r.code != ExitOK || !strings.Contains(r.out, "<failure") {
		t.Errorf("--exit-zero-on-failure: code %d, want 0 with a JUnit failure; stdout:\n%s", r.code, r.out)
	}
}

func TestOutputFile(t *testing.T) {
	srv := newTLSServer(http.HandlerFunc(versionHandler))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "report.yaml")
	r := run(t, "netsleuth", "check", "--kubeconfig", kubeconfig(t, srv.URL, trustedCluster(srv)), "-o", "yaml", "--output-file", path)
	b, err := os.ReadFile(path)
	if r.code != ExitOK || err != nil || !strings.Contains(string(b), "kind: Report") || r.out != "" {
		t.Errorf("code %d, err %v, stdout %q, file:\n%s", r.code, err, r.out, b)
	}
}

func TestPluginName(t *testing.T) {
	r := run(t, "/usr/local/bin/kubectl-netsleuth.exe", "check", "--help")
	if r.code != 0 || !strings.Contains(r.out, "kubectl netsleuth check [flags]") {
		t.Errorf("plugin help does not say kubectl netsleuth:\n%s", r.out)
	}
	r = run(t, "kubectl-netsleuth", "check", "-o", "xml")
	if !strings.HasPrefix(r.errOut, "kubectl netsleuth: ") {
		t.Errorf("plugin error does not name kubectl netsleuth: %q", r.errOut)
	}
}

func TestProbesAndVersion(t *testing.T) {
	r := run(t, "netsleuth", "probes")
	if r.code != 0 || !strings.Contains(r.out, "ok ") || !strings.Contains(r.out, "list pods") {
		t.Errorf("probes table:\n%s", r.out)
	}
	r = run(t, "netsleuth", "probes", "-o", "json")
	var infos []model.ProbeInfo
	if err := json.Unmarshal([]byte(r.out), &infos); err != nil || len(infos) != 2 {
		t.Errorf("probes -o json: %v\n%s", err, r.out)
	}
	r = run(t, "netsleuth", "version")
	if r.code != 0 || !strings.HasPrefix(r.out, "netsleuth dev (commit none") || !strings.Contains(r.out, "go1.") {
		t.Errorf("version: %q", r.out)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// newTLSServer is httptest.NewTLSServer without logging the handshake errors
// the TLS tests provoke on purpose.
func newTLSServer(h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	return srv
}

func TestPrintSurveyNamesLiveRuns(t *testing.T) {
	var b strings.Builder
	now := time.Now()
	printSurvey(&b, agent.Survey{
		Leftovers: []string{"namespace/netsleuth-dead"},
		Live:      []agent.Run{{ID: "aaaa", Namespace: "team", Holder: "h", Renewed: now, Expires: now.Add(30 * time.Second)}, {ID: "bbbb"}},
	}, false)
	out := b.String()
	for _, w := range []string{"deleted namespace/netsleuth-dead\n", "skipped 2 live runs;", "  run aaaa (Lease team/netsleuth-aaaa held by h", "  run bbbb (starting"} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
	b.Reset()
	printSurvey(&b, agent.Survey{}, true)
	if b.String() != "nothing to clean up\n" {
		t.Errorf("empty survey: %q", b.String())
	}
}

func TestRunIDFlagIsValidated(t *testing.T) {
	for _, id := range []string{"Bad_ID", "toolongtoolongtoolong", "a.b"} {
		wantUsage(t, run(t, "netsleuth", "check", "--run-id", id), "--run-id must be 1 to 16 lowercase letters or digits")
	}
}
