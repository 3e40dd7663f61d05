package servicediag

import (
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/yaml"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
)

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func fixture(t *testing.T) Input {
	t.Helper()
	b, err := os.ReadFile("testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Services []corev1.Service            `json:"services"`
		Pods     []corev1.Pod                `json:"pods"`
		Slices   []discoveryv1.EndpointSlice `json:"slices"`
	}
	if err := yaml.UnmarshalStrict(b, &in); err != nil {
		t.Fatal(err)
	}
	return Input{Services: in.Services, Pods: in.Pods, Slices: in.Slices, Now: now}
}

func TestAnalyzeFixture(t *testing.T) {
	got := Analyze(fixture(t))
	kubetest.CheckContract(t, got)
	want := []struct {
		id, svc string
		st      model.Status
		has     string // substring of root cause or evidence
	}{
		{IDOK, "web", model.StatusPass, "1 Ready"},
		{IDSelectorNoMatch, "typo", model.StatusFail, "pod(s) frontend-1 have tier=webapp (selector wants tier=web)"},
		{IDNoReadyEndpoints, "api", model.StatusFail, "pod api-1: container api running but its readiness probe (httpGet /healthz:8080) is failing"},
		{IDNoReadyEndpoints, "api", model.StatusFail, "pod api-2: not scheduled: Unschedulable: 0/3 nodes are available: 3 Insufficient memory."},
		{IDTargetPortUnknown, "metrics", model.StatusFail, `container ports the selected pods declare: http (8080/TCP)`},
		{IDSliceStale, "cache", model.StatusFail, "slice cache-abc lists pod cache-1 as ready, but the pod is not Ready since 2026-01-01T11:30:00Z (container redis waiting: CrashLoopBackOff (restarts 7))"},
		{IDSliceMissing, "cache", model.StatusFail, "pod cache-2 (10.244.1.20) Ready since 2026-01-01T11:30:00Z is in no EndpointSlice"},
		{IDNoSelectorEmpty, "legacy-db", model.StatusWarn, "no EndpointSlice labelled kubernetes.io/service-name=legacy-db"},
		{IDExternalName, "partner", model.StatusSkip, "externalName=api.partner.example"},
	}
	for _, w := range want {
		f, ok := kubetest.Find(got, w.id, w.svc)
		if !ok || f.Status != w.st {
			t.Errorf("want %s %s on %s, got %+v", w.id, w.st, w.svc, f)
			continue
		}
		if text := f.RootCause + "\n" + strings.Join(f.Evidence, "\n"); !strings.Contains(text, w.has) {
			t.Errorf("%s on %s: %q not in\n%s", w.id, w.svc, w.has, text)
		}
	}
	if len(got) != len(want)-1 {
		t.Errorf("got %d findings, want %d", len(got), len(want)-1)
	}
	f, _ := kubetest.Find(got, IDSelectorNoMatch, "typo")
	if cmd := f.Fixes[0].Commands[0]; cmd != `kubectl -n shop patch service typo --type merge -p '{"spec":{"selector":{"app":"frontend","tier":"webapp"}}}'` {
		t.Errorf("selector fix %q", cmd)
	}
}

func TestGraceHidesFreshDisagreement(t *testing.T) {
	in := fixture(t)
	in.Now = time.Date(2026, 1, 1, 11, 30, 30, 0, time.UTC) // 30 s after the cache pods changed
	got := Analyze(in)
	if kubetest.Count(got, IDSliceStale, model.StatusFail)+kubetest.Count(got, IDSliceMissing, model.StatusFail) != 0 {
		t.Errorf("disagreements inside the grace period must not be reported: %+v", got)
	}
}

func TestPartialTargetPortAndPublishNotReady(t *testing.T) {
	in := fixture(t)
	extra := in.Pods[0].DeepCopy()
	extra.Name = "web-2"
	extra.Spec.Containers[0].Ports = append(extra.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "prom", ContainerPort: 9090})
	in.Pods = append(in.Pods, *extra)
	for i := range in.Services {
		if in.Services[i].Name == "api" {
			in.Services[i].Spec.PublishNotReadyAddresses = true
		}
	}
	got := Analyze(in)
	if f, ok := kubetest.Find(got, IDTargetPortUnknown, "metrics"); !ok || f.Status != model.StatusWarn {
		t.Errorf("want a warn when only some pods declare the port, got %+v", f)
	}
	if _, ok := kubetest.Find(got, IDNoReadyEndpoints, "api"); ok {
		t.Errorf("publishNotReadyAddresses services have endpoints regardless of readiness")
	}
}

func TestScaledToZero(t *testing.T) {
	in := fixture(t)
	in.Workloads = []Workload{
		{Kind: "Deployment", Namespace: "shop", Name: "frontend", Replicas: 0, PodLabels: map[string]string{"app": "frontend", "tier": "web"}},
		{Kind: "Deployment", Namespace: "other", Name: "frontend", Replicas: 0, PodLabels: map[string]string{"app": "frontend", "tier": "web"}},
	}
	got := Analyze(in)
	kubetest.CheckContract(t, got)
	f, ok := kubetest.Find(got, IDScaledToZero, "typo")
	if !ok || !strings.Contains(f.RootCause, "Deployment shop/frontend") || !strings.Contains(strings.Join(f.Fixes[0].Commands, "\n"), "kubectl -n shop scale deployment frontend --replicas=2") {
		t.Fatalf("want scaled-to-zero for typo, got %+v", f)
	}
	if f.Key != model.KeyOf(IDScaledToZero, f.Subject, "") {
		t.Errorf("key %q", f.Key)
	}
}
