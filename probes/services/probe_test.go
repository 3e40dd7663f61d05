package services

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
	. "github.com/netsleuth/netsleuth/probes/servicediag"
)

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func fixture(t *testing.T) Input {
	t.Helper()
	b, err := os.ReadFile("../servicediag/testdata/cluster.yaml")
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

func TestRunWithFakeClient(t *testing.T) {
	in := fixture(t)
	var objs []k8sruntime.Object
	for i := range in.Services {
		objs = append(objs, &in.Services[i])
	}
	for i := range in.Pods {
		objs = append(objs, &in.Pods[i])
	}
	for i := range in.Slices {
		objs = append(objs, &in.Slices[i])
	}
	other := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "orphan"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "x"}}}
	cs := fake.NewClientset(append(objs, other)...)
	rec := &kubetest.Recorder{}
	p := probe{now: func() time.Time { return now }}
	if err := p.Run(context.Background(), &probes.Env{Kube: cs, Namespace: "shop"}, rec); err != nil {
		t.Fatal(err)
	}
	kubetest.CheckContract(t, rec.Findings)
	if len(rec.Findings) != 8 || len(rec.Stages) != 1 {
		t.Errorf("got %d findings, stages %v", len(rec.Findings), rec.Stages)
	}
	if _, ok := kubetest.Find(rec.Findings, IDSelectorNoMatch, "orphan"); ok {
		t.Error("--namespace shop must not report Service other/orphan")
	}
}
