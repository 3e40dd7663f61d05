package cmd

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/netsleuth/netsleuth/probes/all"
)

// TestBadInputValues runs each bad flag value through the real catalogue
// against an API server that counts requests: each is one usage sentence
// naming the flag and a valid example, exit 2, and no request was made.
func TestBadInputValues(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"negative max-pairs", []string{"check", "--max-pairs", "-3"}, []string{`--max-pairs "-3" is negative`, "e.g. --max-pairs 30"}},
		{"negative max-pairs, pod-to-pod chosen", []string{"check", "--probe", "pod-to-pod", "--max-pairs=-1"}, []string{`--max-pairs "-1" is negative`}},
		{"unknown port profile", []string{"check", "--port-profile", "nope"}, []string{`--port-profile "nope" is not a port profile (there are `, "kubeadm", "e.g. --port-profile kubeadm"}},
		{"unknown port profile, node-ports chosen", []string{"check", "--probe", "node-ports", "--port-profile", "nope"}, []string{`--port-profile "nope"`, "e.g. --port-profile kubeadm"}},
		{"from not a pod", []string{"check", "--from", "bad", "--to", "c/d:80"}, []string{`--from "bad" is not namespace/pod`, "e.g. --from default/client"}},
		{"from with too many parts", []string{"check", "--probe", "policy", "--from", "a/b/c", "--to", "c/d:80"}, []string{`--from "a/b/c" is not`}},
		{"to port out of range", []string{"check", "--from", "a/b", "--to", "c/d:99999"}, []string{`--to "c/d:99999" has a bad port "99999"`, "e.g. --to default/server:80"}},
		{"to without port", []string{"check", "--from", "a/b", "--to", "c/d"}, []string{`--to "c/d" has no port`, "e.g. --to default/server:80"}},
		{"to bad protocol", []string{"check", "--from", "a/b", "--to", "c/d:80/icmp"}, []string{`--to "c/d:80/icmp" has a bad port "80/icmp": unknown protocol`}},
		{"to not an endpoint", []string{"check", "--from", "a/b", "--to", "nopod:80"}, []string{`--to "nopod:80" is not namespace/pod:port`}},
		{"service not ns/name", []string{"check", "--service", "web"}, []string{`--service "web" is not namespace/name`, "e.g. --service default/my-service"}},
		{"metadata without port", []string{"check", "--probe", "exposure", "--metadata-address", "169.254.169.254"}, []string{`--metadata-address "169.254.169.254" is not an IP address with a port`, "e.g. --metadata-address 169.254.169.254:80"}},
		{"trace probe from", []string{"check", "--probe", "trace", "--from", "a/b/c/d", "--to", "c/svc/d:80"}, []string{`--from "a/b/c/d" is not namespace/pod, namespace/deployment/name or node/NAME`, "e.g. --from shop/deployment/web"}},
		{"trace probe to", []string{"check", "--probe", "trace", "--from", "a/b", "--to", "c/svc/d:0"}, []string{`--to "c/svc/d:0" port "0" is not 1-65535`, "e.g. --to shop/svc/api:8080"}},
		{"trace max-pairs", []string{"trace", "a/b", "c/d:80", "--max-pairs", "-3"}, []string{`--max-pairs "-3" is negative`}},
		{"trace port profile", []string{"trace", "a/b", "c/d:80", "--port-profile", "nope"}, []string{`--port-profile "nope"`}},
		{"trace TO port", []string{"trace", "a/b", "c/d:99999"}, []string{`TO "c/d:99999": port "99999" is not 1-65535`, "e.g. shop/svc/api:8080"}},
		{"trace FROM", []string{"trace", "bad", "c/d:80"}, []string{`FROM "bad" is not`, "e.g. shop/web-7d9c"}},
		{"trace --port", []string{"trace", "a/b", "c/d", "--port", "70000"}, []string{`--port "70000"`, "e.g. --port 8080/tcp"}},
		{"external from not a workload", []string{"check", "--probe", "external", "--target", "192.168.2.10:80", "--from", "shop/*"}, []string{`--from "shop/*" is not namespace/pod or namespace/deployment/name`, "e.g. --from shop/deployment/web"}},
		{"external from an IP", []string{"check", "--probe", "external", "--target", "192.168.2.10:80", "--from", "10.0.0.1"}, []string{`--from "10.0.0.1" is not namespace/pod`}},
		{"pod-to-service from a node", []string{"check", "--probe", "pod-to-service", "--from", "node/n1"}, []string{`--from "node/n1" is not namespace/pod`}},
		{"policy from without to", []string{"check", "--probe", "policy", "--from", "shop/client"}, []string{`--from "shop/client" is used by no selected probe (probe policy needs --to with it); pass --to too, or add --probe external or --probe pod-to-service to ask from --from alone`}},
		{"policy to without from", []string{"check", "--probe", "policy", "--to", "shop/svc/web:80"}, []string{`--to "shop/svc/web:80" is used by no selected probe (probe policy needs --from with it); pass --from too`}},
		{"policy to a Service without port", []string{"check", "--probe", "policy", "--from", "a/b", "--to", "shop/svc/web"}, []string{`--to "shop/svc/web" has no port`}},
		{"policy to a Service port out of range", []string{"check", "--probe", "policy", "--from", "a/b", "--to", "shop/svc/web:0"}, []string{`--to "shop/svc/web:0" has a bad port "0"`}},
		{"policy from a bad workload", []string{"check", "--probe", "policy", "--from", "shop/frob/web", "--to", "c/d:80"}, []string{`--from "shop/frob/web" is not namespace/pod, namespace/deployment/name`}},
		{"default probes from an IP alone", []string{"check", "--from", "10.0.0.1"}, []string{`--from "10.0.0.1" is used by no selected probe (probe policy needs --to with it)`}},
		{"tui max-pairs", []string{"--max-pairs", "-3"}, []string{`--max-pairs "-3" is negative`}},
		{"tui from", []string{"--from", "bad", "--to", "c/d:80"}, []string{`--from "bad" is not`}},
		{"tui port profile", []string{"--port-profile", "nope"}, []string{`--port-profile "nope"`}},
	}
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requests.Store(0)
			var out, errOut bytes.Buffer
			app := App{Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Probes: all.Probes, Argv0: "netsleuth"}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			code := Execute(ctx, app, append(tc.args, "--server", srv.URL))
			msg := strings.TrimSuffix(errOut.String(), "\n")
			t.Log(msg)
			if code != ExitUsage {
				t.Errorf("exit code = %d, want %d", code, ExitUsage)
			}
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "netsleuth: ") {
				t.Errorf("stderr is not one line starting with the command name: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q does not contain %q", msg, w)
				}
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("%d requests reached the API server before the bad value was refused", n)
			}
		})
	}
}

// TestGoodInputValuesReachTheServer guards the test above: values the probes
// take pass validation, so the command goes on to ask the API server.
func TestGoodInputValuesReachTheServer(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	for _, args := range [][]string{
		{"check", "--max-pairs", "0", "--port-profile", "kubeadm", "--from", "a/b", "--to", "c/d:53/udp"},
		{"check", "--from", "a/*", "--to", "b/*:80", "--service", "default/web", "--probe", "exposure", "--metadata-address", "10.0.0.1:80"},
		{"check", "--from", "10.0.0.0/24", "--to", "10.1.0.5:443"},
		{"trace", "a/deployment/b", "c/svc/d:80", "--max-pairs", "5"},
		{"check", "--probe", "external", "--target", "192.168.2.10:80", "--from", "shop/deployment/web"},
		{"check", "--probe", "pod-to-service", "--service", "shop/web", "--from", "shop/client", "--policy-live", "ephemeral"},
		{"check", "--probe", "policy", "--from", "shop/deploy/web", "--to", "shop/svc/web:80"},
		{"check", "--probe", "policy", "--from", "shop/client", "--to", "192.168.2.0/24:80"},
		{"check", "--from", "shop/client"}, // the default probes: pod-to-service asks from it, policy lints
		{"check", "--from", "a/*", "--to", "b/*:80"},
	} {
		requests.Store(0)
		var errOut bytes.Buffer
		app := App{Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &errOut}, Probes: all.Probes, Argv0: "netsleuth"}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		Execute(ctx, app, append(args, "--server", srv.URL, "-o", "json"))
		cancel()
		if requests.Load() == 0 {
			t.Errorf("%v: no request reached the API server (stderr %q)", args, errOut.String())
		}
	}
}
