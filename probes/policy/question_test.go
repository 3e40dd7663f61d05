package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// withService adds Service default/web (port 8080 → targetPort "http") in
// front of nginx, a Deployment whose pod is busybox, and an egress policy
// that keeps busybox inside the cluster (10.0.0.0/8).
func withService(t *testing.T) *fake.Clientset {
	t.Helper()
	cs := accessNginx()
	tcp := corev1.ProtocolTCP
	objs := []struct {
		create func() error
	}{
		{func() error {
			_, err := cs.CoreV1().Services("default").Create(context.Background(), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
				Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.50", ClusterIPs: []string{"10.96.0.50"}, Selector: map[string]string{"app": "nginx"},
					Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("http")}}}}, metav1.CreateOptions{})
			return err
		}},
		{func() error {
			_, err := cs.DiscoveryV1().EndpointSlices("default").Create(context.Background(), &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-x", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](80)}},
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.10"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
					TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "nginx"}}}}, metav1.CreateOptions{})
			return err
		}},
		{func() error {
			_, err := cs.AppsV1().Deployments("default").Create(context.Background(), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "bb"},
				Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"run": "busybox"}}}}, metav1.CreateOptions{})
			return err
		}},
		{func() error {
			_, err := cs.NetworkingV1().NetworkPolicies("default").Create(context.Background(), &networkingv1.NetworkPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "busybox-in-cluster"},
				Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"run": "busybox"}},
					PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
					Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}},
						Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp}}}}}}, metav1.CreateOptions{})
			return err
		}},
	}
	for _, o := range objs {
		if err := o.create(); err != nil {
			t.Fatal(err)
		}
	}
	// The fake pods run on no node; the stand-in goes to the source's.
	p, _ := cs.CoreV1().Pods("default").Get(context.Background(), "busybox", metav1.GetOptions{})
	p.Spec.NodeName = "n1"
	_, _ = cs.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{})
	return cs
}

// TestQuestionToAnAddressVerifiedLive: --to an IP (or a CIDR, asked at its
// first host) is answered by the egress ipBlock and verified by sending to
// that address from the stand-in.
func TestQuestionToAnAddressVerifiedLive(t *testing.T) {
	fa := &fakeAgents{results: []ops.Outcome{ops.Timeout}}
	rec := runLive(t, withService(t), fa, "default/busybox", "192.168.2.10:80", "")
	v := rec.byID("policy.verdict")
	if len(v) != 1 || v[0].Status != model.StatusWarn || v[0].Subject.String() != "Address/192.168.2.10" || !strings.Contains(v[0].RootCause, "default/busybox-in-cluster") {
		t.Fatalf("want a denial of the address naming the egress policy: %+v", v)
	}
	if len(fa.sent) != 1 || fa.sent[0].Target != "192.168.2.10" || fa.sent[0].Port != 80 {
		t.Errorf("live traffic went to %+v, want 192.168.2.10:80", fa.sent)
	}
	if ev := strings.Join(v[0].Evidence, "\n"); !strings.Contains(ev, "verified live: TCP connect 192.168.2.10:80 from stand-in pod default/netsleuth-as-busybox-r1") {
		t.Errorf("evidence:\n%s", ev)
	}

	// Allowed (inside 10.0.0.0/8) and dropped: not a policy problem, and
	// the path diagnoses are named.
	fa = &fakeAgents{results: []ops.Outcome{ops.Timeout}}
	rec = runLive(t, withService(t), fa, "default/busybox", "10.200.0.0/16:443", "")
	if v := rec.byID("policy.verdict"); len(v) != 1 || v[0].Status != model.StatusPass || v[0].Subject.String() != "Address/10.200.0.1" {
		t.Fatalf("a CIDR is asked at its first host: %+v", v)
	}
	u := rec.byID("policy.allowed-but-unreachable")
	if len(u) != 1 || !strings.Contains(u[0].RootCause, "outside the pods") || !fixHas(u[0], "netsleuth trace default/busybox 10.200.0.1:443") ||
		!fixHas(u[0], "--probe external --target 10.200.0.1:443 --from default/busybox") {
		t.Errorf("want the path diagnoses named: %+v", u)
	}
}

// TestQuestionToAService: --to ns/svc/name:port, and the Service's
// ClusterIP, are asked of its endpoints' pods on the port the Service port
// maps to, from a Deployment read as one of its pods.
func TestQuestionToAService(t *testing.T) {
	for _, to := range []string{"default/svc/web:8080", "10.96.0.50:8080"} {
		fa := &fakeAgents{results: []ops.Outcome{ops.Timeout}}
		rec := runLive(t, withService(t), fa, "default/deployment/bb", to, "")
		v := rec.byID("policy.verdict")
		if len(v) != 1 || v[0].Subject.String() != "Pod/default/nginx" || v[0].Status != model.StatusWarn || !strings.Contains(v[0].RootCause, "default/access-nginx") ||
			!strings.Contains(v[0].Title, "default/busybox -> default/nginx on tcp/80") {
			t.Fatalf("%s: want the endpoint nginx on targetPort 80 denied by access-nginx: %+v", to, v)
		}
		if !strings.HasPrefix(v[0].Evidence[0], "Service default/web port tcp/8080 → targetPort http: endpoint 10.0.0.10:80 (pod default/nginx)") {
			t.Errorf("%s: evidence does not say how the Service maps: %v", to, v[0].Evidence)
		}
		if len(fa.sent) != 1 || fa.sent[0].Target != "10.0.0.10" || fa.sent[0].Port != 80 {
			t.Errorf("%s: live traffic went to %+v, want the endpoint 10.0.0.10:80", to, fa.sent)
		}
	}
	for to, want := range map[string]string{
		"default/svc/web:9999": "Service default/web has no port tcp/9999 (its ports: 8080/tcp→http)",
		"default/svc/nope:80":  "Service default/nope not found",
	} {
		err := New().Run(context.Background(), envFor(withService(t), "default/busybox", to), &recorder{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", to, err, want)
		}
	}
}

func fixHas(f model.Finding, s string) bool {
	for _, x := range f.Fixes {
		if strings.Contains(x.Description+strings.Join(x.Commands, "\n")+x.Manifest, s) {
			return true
		}
	}
	return false
}

func envFor(cs *fake.Clientset, from, to string) *probes.Env {
	return &probes.Env{RunID: "r1", Kube: cs, Options: probes.Options{From: from, To: to, PolicyLive: "off"}}
}

// TestPreflight: a question naming a pod, workload or Service the cluster
// does not have is an input error before anything is created.
func TestPreflight(t *testing.T) {
	cs := withService(t)
	for _, c := range []struct{ from, to, want string }{
		{"default/nope", "default/nginx:80", "--from: pod default/nope not found"},
		{"default/deploy/nope", "192.168.2.10:80", "--from: Deployment default/nope not found"},
		{"default/busybox", "default/svc/nope:80", "--to: Service default/nope not found"},
		{"default/busybox", "default/gone:80", "--to: pod default/gone not found"},
		{"default/busybox", "default/svc/web:8080", ""},
		{"default/deployment/bb", "10.0.0.0/8:80", ""},
		{"default/*", "shop/*:80", ""},
	} {
		err := New().(probes.Preflighter).Preflight(context.Background(), envFor(cs, c.from, c.to))
		var ie *probes.InputError
		if (c.want == "") != (err == nil) || (err != nil && (!errors.As(err, &ie) || !strings.HasPrefix(err.Error(), c.want))) {
			t.Errorf("--from %s --to %s: %v, want %q", c.from, c.to, err, c.want)
		}
	}
}
