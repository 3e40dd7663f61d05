package source

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/netsleuth/netsleuth/probes"
)

func TestParse(t *testing.T) {
	ok := map[string]Ref{
		"shop/web-7d9c":       {Namespace: "shop", Name: "web-7d9c"},
		"shop/deployment/web": {Namespace: "shop", Name: "web", Kind: "Deployment"},
		"shop/STS/db":         {Namespace: "shop", Name: "db", Kind: "StatefulSet"},
		"kube-system/ds/x":    {Namespace: "kube-system", Name: "x", Kind: "DaemonSet"},
	}
	for v, want := range ok {
		r, err := Parse(v)
		if err != nil || r != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", v, r, err, want)
		}
		if again, _ := Parse(r.String()); again != r {
			t.Errorf("%q renders as %q, which reads back as %+v", v, r.String(), again)
		}
	}
	for _, v := range []string{"", "web", "shop/", "/web", "node/n1", "shop/*", "10.0.0.1", "10.0.0.0/24", "shop/frob/web", "shop/web:80", "a/b/c/d", "shop/we b"} {
		if _, err := Parse(v); err == nil || !strings.HasPrefix(err.Error(), "is not namespace/pod") {
			t.Errorf("Parse(%q) err %v, want a phrase completing --from %q ...", v, err, v)
		}
	}
	if _, ok := Given(probes.Options{From: "shop/*", To: "shop/*:80"}); ok {
		t.Error("a matrix --from is the policy probe's, not a source")
	}
	if r, ok := Given(probes.Options{From: "shop/deploy/web"}); !ok || r.Kind != "Deployment" {
		t.Errorf("Given: %+v %v", r, ok)
	}
}

func pod(name, phase, ip string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: labels},
		Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodPhase(phase), PodIP: ip}}
}

func TestPod(t *testing.T) {
	web := map[string]string{"app": "web"}
	cs := fake.NewClientset(
		pod("web-b", "Running", "10.0.0.2", web), pod("web-a", "Pending", "", web), pod("web-c", "Running", "10.0.0.3", web),
		pod("lonely", "Pending", "", nil),
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: web}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "idle"}, Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "idle"}}}},
	)
	ctx := context.Background()
	p, err := Pod(ctx, cs, Ref{Namespace: "shop", Name: "web", Kind: "Deployment"})
	if err != nil || p.Name != "web-b" {
		t.Errorf("a Deployment's source is its first running pod by name: %v %v", p, err)
	}
	if p, err := Pod(ctx, cs, Ref{Namespace: "shop", Name: "web-c"}); err != nil || p.Status.PodIP != "10.0.0.3" {
		t.Errorf("pod: %v %v", p, err)
	}
	bad := map[Ref]string{
		{Namespace: "shop", Name: "nope"}:                      "pod shop/nope not found (kubectl -n shop get pods)",
		{Namespace: "shop", Name: "lonely"}:                    "pod shop/lonely is Pending, not running with an IP",
		{Namespace: "shop", Name: "gone", Kind: "StatefulSet"}: "StatefulSet shop/gone not found",
		{Namespace: "shop", Name: "idle", Kind: "Deployment"}:  "Deployment shop/idle has no running pod (kubectl -n shop get pods -l app=idle)",
	}
	for r, want := range bad {
		_, err := Pod(ctx, cs, r)
		if !IsNotFound(err) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Pod(%v) = %v; want a not-found %q", r, err, want)
		}
	}
}
