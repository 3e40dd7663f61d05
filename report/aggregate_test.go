package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"
	"sigs.k8s.io/yaml"

	"github.com/netsleuth/netsleuth/model"
)

// atScale is a report from a large cluster: 412 Services without ready
// endpoints (one fix modulo the Service), 2,000 kubelet passes, 1,900
// NotReady nodes as one finding with six probes citing it, seven agents
// that did not start (fixes naming their own pods), and three selector
// mismatches (few enough to show one by one).
func atScale() *model.Report {
	r := model.NewReport(model.Cluster{Context: "big", Server: "https://10.0.0.1:6443", Version: "v1.36.3"}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	r.DurationMs = 12345
	var ev []string
	for i := range 1900 {
		ev = append(ev, fmt.Sprintf("node node-%04d: Ready=Unknown (NodeStatusUnknown): Kubelet stopped posting node status.", i+100))
	}
	nr := model.Finding{Probe: "pod-to-pod", ID: "nodes.not-ready", Status: model.StatusFail,
		Title: "1,900 of 2,000 nodes are not Ready: node-0100, node-0101, … (1,890 more)", RootCause: "1,900 of 2,000 nodes are not Ready.",
		Evidence: ev, Fixes: []model.Fix{{Description: "List them:", Commands: []string{"kubectl get nodes"}}}}.WithKey("")
	r.Add(nr)
	for _, p := range []string{"pod-to-pod", "dns", "node-sysctl", "external", "pod-to-service", "exposure"} {
		r.Add(model.Finding{Probe: p, ID: p + ".nodes-skipped", Status: model.StatusWarn, Title: p + " did not test from 1,900 node(s) that are not Ready"}.Symptom(nr).WithKey(""))
	}
	for i := range 7 {
		node, pod := fmt.Sprintf("node-%04d", i*3), fmt.Sprintf("netsleuth-pod-%d", i*7)
		r.Add(model.Finding{Probe: "pod-to-pod", ID: "agent.not-started", Status: model.StatusError, Title: "Node " + node + " did not run netsleuth's pod agent",
			Subject: &model.Subject{Kind: "Node", Name: node}, RootCause: "Node " + node + " did not run the agent pod (Timeout).",
			Fixes: []model.Fix{{Description: "Look at the pod's events.", Commands: []string{"kubectl -n netsleuth-x describe pod " + pod, "kubectl describe node " + node}}}}.WithKey(pod))
	}
	for i := range 412 {
		ns, name := fmt.Sprintf("ns-%03d", i), fmt.Sprintf("svc-%03d", i)
		r.Add(model.Finding{Probe: "services", ID: "services.no-ready-endpoints", Status: model.StatusFail,
			Subject:   &model.Subject{Kind: "Service", Namespace: ns, Name: name},
			Title:     fmt.Sprintf("Service %s/%s has no ready endpoints: 0 of %d selected pods are Ready", ns, name, 1+i%3),
			RootCause: fmt.Sprintf("None of the pods Service %s/%s selects is Ready, so connections to it fail.", ns, name),
			Evidence:  []string{fmt.Sprintf("pod %s-0: CrashLoopBackOff", name)},
			Fixes: []model.Fix{{Description: "See why the pods are not Ready:", Commands: []string{
				fmt.Sprintf("kubectl -n %s describe pods -l app=%s", ns, name), fmt.Sprintf("kubectl -n %s get endpointslices -l kubernetes.io/service-name=%s", ns, name)}}}}.WithKey(""))
	}
	for i := range 3 {
		r.Add(model.Finding{Probe: "services", ID: "services.selector-no-match", Status: model.StatusFail,
			Subject: &model.Subject{Kind: "Service", Namespace: "web", Name: fmt.Sprintf("front-%d", i)},
			Title:   fmt.Sprintf("Service web/front-%d selector app=front matches no pod", i), RootCause: "Nothing matches.",
			Fixes: []model.Fix{{Description: "Fix the selector.", Commands: []string{fmt.Sprintf("kubectl -n web edit service front-%d", i)}}}}.WithKey(""))
	}
	for i := range 2000 {
		n := fmt.Sprintf("node-%04d", i)
		r.Add(model.Finding{Probe: "kubelet", ID: "kubelet.read-only-port", Status: model.StatusPass, Title: "node " + n + ": readOnlyPort is 0",
			Subject: &model.Subject{Kind: "Node", Name: n}}.WithKey(""))
	}
	return r
}

func writeScale(t *testing.T, f Format) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, f, atScale(), Options{}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestTextAtScale(t *testing.T) {
	r := atScale()
	if err := r.Validate(); err != nil {
		t.Fatalf("the at-scale report does not validate: %v", err)
	}
	out := writeScale(t, Text)
	golden.RequireEqual(t, out)
	text := string(out)
	if lines := strings.Count(text, "\n"); lines > 120 {
		t.Errorf("%d lines for %d findings: not aggregated", lines, len(r.Findings))
	}
	for _, want := range []string{
		"[3]  FAIL   412 Services have no ready endpoints; first 10: ns-000/svc-000, ns-001/svc-001,",
		"ns-009/svc-009, …  (services.no-ready-endpoints)",
		"root cause (each): None of the pods Service <namespace>/<name> selects is Ready",
		"fix 1 (each, with its own name): See why the pods are not Ready:",
		"$ kubectl -n <namespace> describe pods -l app=<name>",
		"all 412 with their evidence: -o json",
		"root cause [3] above",
		"PASS   2,000 kubelets: read-only port; first 10: node-0000,",
		"7 nodes did not run netsleuth's agent; first 7: node-0000, node-0003",
		"(node-0000; the others' differ)",
		"… 1,890 more lines: -o json",
		"symptoms (6):",
		"2,429 findings in 12.3s: 2,000 pass, 6 warn, 416 fail, 7 error, 0 skip",
		"423 root causes (6 entries below), 6 symptoms",
		"Service web/front-2 selector app=front matches no pod",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	for _, absent := range []string{"ns-010/svc-010", "node-0110:", "node-0010: readOnlyPort"} {
		if strings.Contains(text, absent) {
			t.Errorf("text report lists %q although it is past the first 10", absent)
		}
	}
}

// TestMachineFormatsKeepEveryFinding: JSON and YAML keep every finding and
// JUnit has one test case per finding, whatever the text report groups.
func TestMachineFormatsKeepEveryFinding(t *testing.T) {
	want := len(atScale().Findings)
	var got model.Report
	if err := json.Unmarshal(writeScale(t, JSON), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Findings) != want || got.Validate() != nil {
		t.Errorf("JSON has %d findings (validate: %v), want %d", len(got.Findings), got.Validate(), want)
	}
	var fromYAML model.Report
	if err := yaml.Unmarshal(writeScale(t, YAML), &fromYAML); err != nil || len(fromYAML.Findings) != want {
		t.Errorf("YAML has %d findings (%v), want %d", len(fromYAML.Findings), err, want)
	}
	var s junitSuites
	if err := xml.Unmarshal(writeScale(t, JUnit), &s); err != nil {
		t.Fatal(err)
	}
	if s.Tests != want {
		t.Errorf("JUnit has %d test cases, want %d", s.Tests, want)
	}
}

func TestGenericReplacesOnlyTheSubject(t *testing.T) {
	f := model.Finding{Subject: &model.Subject{Kind: "Node", Name: "worker-1"}}
	got := generic(f, "ssh worker-1; not worker-10 or my-worker-1, but worker-1.")
	if want := "ssh <name>; not worker-10 or my-worker-1, but <name>."; got != want {
		t.Errorf("generic = %q, want %q", got, want)
	}
	g := Group{Findings: []model.Finding{
		{ID: "x", Subject: &model.Subject{Name: "a"}, Fixes: []model.Fix{{Description: "d", Node: "a", Commands: []string{"fix a"}}}},
		{ID: "x", Subject: &model.Subject{Name: "b"}, Fixes: []model.Fix{{Description: "d", Node: "b", Commands: []string{"fix b"}}}},
	}}
	if fx, ok := sharedFixes(g); !ok || fx[0].Commands[0] != "fix <name>" || fx[0].Node != "<name>" {
		t.Errorf("sharedFixes = %v %v", fx, ok)
	}
	g.Findings[1].Fixes[0].Commands[0] = "fix b --force"
	if _, ok := sharedFixes(g); ok {
		t.Error("fixes that differ beyond their subject count as shared")
	}
}

func TestGroupsKeepSmallSetsApart(t *testing.T) {
	var fs []model.Finding
	for i := range AggregateOver {
		fs = append(fs, model.Finding{ID: "a", Status: model.StatusFail, Key: fmt.Sprint("a", i)})
	}
	fs = append(fs, model.Finding{ID: "a", Status: model.StatusWarn, Key: "w"})
	if gs := groupFindings(fs, nil); len(gs) != AggregateOver+1 || gs[0].Aggregate() {
		t.Errorf("%d groups, want %d single findings", len(gs), AggregateOver+1)
	}
	fs = append(fs, model.Finding{ID: "a", Status: model.StatusFail, Key: "last"})
	gs := groupFindings(fs, nil)
	if len(gs) != 2 || !gs[0].Aggregate() || len(gs[0].Findings) != AggregateOver+1 || gs[1].First().Key != "w" {
		t.Errorf("groups %+v, want the %d fails as one aggregate, then the warn", gs, AggregateOver+1)
	}
}
