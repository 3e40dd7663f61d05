package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"reflect"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/model"
)

// sample is a report with one finding of every status, and a root cause
// with a symptom.
func sample() *model.Report {
	r := model.NewReport(model.Cluster{Context: "kind-lab", Server: "https://127.0.0.1:6443", Version: "v1.36.0"},
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	r.DurationMs = 4321
	r.Add(model.Finding{Probe: "dns", ID: "coredns-ready", Status: model.StatusPass, Title: "CoreDNS is ready",
		Subject: &model.Subject{Kind: "Deployment", Namespace: "kube-system", Name: "coredns"}}.WithKey(""))
	r.Add(model.Finding{Probe: "dns", ID: "ndots", Status: model.StatusWarn, Title: "ndots:5 amplifies external lookups",
		RootCause: "Pods use ndots:5, so each external name is tried against 4 search domains first.",
		Evidence:  []string{"resolv.conf: options ndots:5"},
		Fixes:     []model.Fix{{Description: "Set dnsConfig.options ndots to 2 on chatty workloads."}}}.WithKey(""))
	cause := model.Finding{Probe: "egress", ID: "node.no-masquerade", Status: model.StatusFail, Title: "No source NAT on node worker-1 for pod traffic to 192.168.2.0/24",
		Subject:   &model.Subject{Kind: "Node", Name: "worker-1"},
		RootCause: "No MASQUERADE rule covers the pod CIDR 10.42.0.0/16 on worker-1, so replies never come back.",
		Evidence:  []string{"node → 192.168.2.10: ok", "pod → 192.168.2.10: 100% loss", "iptables -t nat -S POSTROUTING: no rule for 10.42.0.0/16"},
		Fixes: []model.Fix{
			{Description: "Masquerade pod traffic leaving the node.", Node: "worker-1",
				Commands: []string{"iptables -t nat -C POSTROUTING -s 10.42.0.0/16 ! -d 10.42.0.0/16 -j MASQUERADE 2>/dev/null || iptables -t nat -A POSTROUTING -s 10.42.0.0/16 ! -d 10.42.0.0/16 -j MASQUERADE"}},
			{Description: "Apply it on every node with a DaemonSet.", Manifest: "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: masq\n"},
		},
		References: []string{"https://kubernetes.io/docs/tasks/administer-cluster/ip-masq-agent/"}}.WithKey("10.42.0.0/16->192.168.2.0/24")
	r.Add(cause)
	r.Add(model.Finding{Probe: "egress", ID: "external.pod-unreachable", Status: model.StatusFail, Title: "Pods on worker-1 cannot reach 192.168.2.10, the node can",
		Subject:  &model.Subject{Kind: "Node", Name: "worker-1 -> 192.168.2.10"},
		Evidence: []string{"node → 192.168.2.10: ok", "pod → 192.168.2.10: timeout"}}.Symptom(cause).WithKey(""))
	r.Add(model.Finding{Probe: "configz", ID: "runner.forbidden", Status: model.StatusError, Title: "Kubelet config lacks RBAC permission",
		RootCause: "The API server denied permission to get nodes/proxy at cluster scope while reading configz, so the probe could not finish.",
		Fixes:     []model.Fix{{Description: "Grant it.", Commands: []string{"kubectl auth can-i get nodes --subresource=proxy --all-namespaces"}}}}.WithKey(""))
	r.Add(model.Finding{Probe: "policy", ID: "no-input", Status: model.StatusSkip, Title: "Policy reachability needs --from and --to",
		RootCause: "No --from/--to given."}.WithKey(""))
	return r
}

func write(t *testing.T, f Format, color bool) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, f, sample(), Options{Color: color}); err != nil {
		t.Fatalf("Write(%s): %v", f, err)
	}
	return b.Bytes()
}

func TestText(t *testing.T)      { golden.RequireEqual(t, write(t, Text, false)) }
func TestTextColor(t *testing.T) { golden.RequireEqualEscape(t, write(t, Text, true), true) }
func TestJSON(t *testing.T)      { golden.RequireEqual(t, write(t, JSON, false)) }
func TestYAML(t *testing.T)      { golden.RequireEqual(t, write(t, YAML, false)) }
func TestJUnit(t *testing.T)     { golden.RequireEqual(t, write(t, JUnit, false)) }

func TestTextPlainHasNoEscapes(t *testing.T) {
	if bytes.Contains(write(t, Text, false), []byte("\x1b[")) {
		t.Error("plain text report contains ANSI escapes")
	}
	if !bytes.Contains(write(t, Text, true), []byte("\x1b[")) {
		t.Error("coloured text report contains no ANSI escapes")
	}
}

func TestJSONRoundTripsAndValidates(t *testing.T) {
	want := sample()
	if err := want.Validate(); err != nil {
		t.Fatalf("sample does not validate: %v", err)
	}
	var got model.Report
	if err := json.Unmarshal(write(t, JSON, false), &got); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("round-tripped report does not validate: %v", err)
	}
	if !reflect.DeepEqual(got.Findings, want.Findings) || got.Summary != want.Summary || got.Cluster != want.Cluster || !got.StartedAt.Equal(want.StartedAt) {
		t.Errorf("round trip changed the report:\n got %+v\nwant %+v", got, *want)
	}
}

func TestJUnitCounts(t *testing.T) {
	var s junitSuites
	if err := xml.Unmarshal(write(t, JUnit, false), &s); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if s.Tests != 6 || s.Failures != 3 || s.Skipped != 1 || len(s.Suites) != 4 {
		t.Errorf("tests=%d failures=%d skipped=%d suites=%d, want 6 3 1 4", s.Tests, s.Failures, s.Skipped, len(s.Suites))
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats() {
		if _, err := ParseFormat(f); err != nil {
			t.Errorf("ParseFormat(%q): %v", f, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) accepted an unknown format")
	}
}

func TestTextLeadsWithRootCauses(t *testing.T) {
	text := string(write(t, Text, false))
	root := bytes.Index([]byte(text), []byte("ROOT CAUSES"))
	all := bytes.Index([]byte(text), []byte("ALL FINDINGS BY PROBE"))
	if r := sample().Summary; r.RootCauses != 2 || r.Symptoms != 1 {
		t.Fatalf("summary %+v, want 2 root causes and 1 symptom", r)
	}
	for _, want := range []string{"2 root causes, 1 symptom", "[1]  FAIL ", "symptoms (1):", "caused by root cause [1] No source NAT", "fix 1, on node worker-1:"} {
		if !bytes.Contains([]byte(text), []byte(want)) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
	if root < 0 || all < root {
		t.Errorf("root causes do not lead:\n%s", text)
	}
}
