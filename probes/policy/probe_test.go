package policy

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
)

type recorder struct {
	stages   []string
	findings []model.Finding
}

func (r *recorder) Stage(s string)                          { r.stages = append(r.stages, s) }
func (r *recorder) Finding(f model.Finding)                 { f.Probe = "policy"; r.findings = append(r.findings, f) }
func (r *recorder) Cleanup(func(ctx context.Context) error) {}
func (r *recorder) byID(id string) (out []model.Finding) {
	for _, f := range r.findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func kpod(ns, name, ip string, labels map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}}
}

// accessNginx is the documented access-nginx example: nginx admits only pods
// labelled access=true; plus an egress policy in "shop" that forgets DNS.
func accessNginx() *fake.Clientset {
	port := intstr.FromInt32(80)
	return fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}},
		kpod("default", "nginx", "10.0.0.10", map[string]string{"app": "nginx"}, corev1.ContainerPort{Name: "http", ContainerPort: 80}),
		kpod("default", "busybox", "10.0.0.11", map[string]string{"run": "busybox"}),
		kpod("shop", "cart", "10.0.1.5", map[string]string{"app": "cart"}),
		kpod("kube-system", "coredns", "10.0.2.2", map[string]string{"k8s-app": "kube-dns"}),
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "access-nginx"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "nginx"}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"access": "true"}}}}}}}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "egress-web-only"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}, PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &port}}}}}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "stale"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "gone"}}}},
	)
}

func TestRunQuestionDenied(t *testing.T) {
	rec := &recorder{}
	env := &probes.Env{Kube: accessNginx(), Options: probes.Options{From: "default/busybox", To: "default/nginx:80"}}
	if err := New().Run(context.Background(), env, rec); err != nil {
		t.Fatal(err)
	}
	v := rec.byID("policy.verdict")
	if len(v) != 1 || v[0].Status != model.StatusWarn || !strings.HasPrefix(v[0].Title, "denied") {
		t.Fatalf("want one denied verdict, got %+v", v)
	}
	if !strings.Contains(v[0].RootCause, "default/access-nginx") {
		t.Errorf("root cause does not name the policy: %s", v[0].RootCause)
	}
	if got := v[0].Fixes[0].Commands; len(got) != 1 || got[0] != "kubectl label pod -n default busybox access=true --overwrite" {
		t.Errorf("first fix should label the client, got %+v", v[0].Fixes[0])
	}
	if !strings.Contains(v[0].Fixes[1].Manifest, "kind: NetworkPolicy") {
		t.Errorf("second fix should be a manifest: %+v", v[0].Fixes[1])
	}
	if err := v[0].Validate(); err != nil {
		t.Error(err)
	}
	if len(rec.stages) == 0 || rec.stages[0] != "listing namespaces, pods and networkpolicies" {
		t.Errorf("stages: %v", rec.stages)
	}
}

func TestRunQuestionAllowedAfterLabel(t *testing.T) {
	cs := accessNginx()
	p, _ := cs.CoreV1().Pods("default").Get(context.Background(), "busybox", metav1.GetOptions{})
	p.Labels["access"] = "true"
	if _, err := cs.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	env := &probes.Env{Kube: cs, Options: probes.Options{From: "default/busybox", To: "default/nginx:http"}}
	if err := New().Run(context.Background(), env, rec); err == nil {
		t.Fatal("a named port in --to should be rejected: the question needs a number")
	}
	env.Options.To = "default/nginx:80/tcp"
	rec = &recorder{}
	if err := New().Run(context.Background(), env, rec); err != nil {
		t.Fatal(err)
	}
	v := rec.byID("policy.verdict")
	if len(v) != 1 || v[0].Status != model.StatusPass || !strings.Contains(strings.Join(v[0].Evidence, " "), "access-nginx ingress[0]") {
		t.Fatalf("want allowed by access-nginx ingress[0], got %+v", v)
	}
}

func TestRunLint(t *testing.T) {
	rec := &recorder{}
	if err := New().Run(context.Background(), &probes.Env{Kube: accessNginx()}, rec); err != nil {
		t.Fatal(err)
	}
	dns := rec.byID("policy.blocks-dns")
	if len(dns) != 1 || dns[0].Status != model.StatusFail || !strings.Contains(dns[0].RootCause, "shop/egress-web-only") {
		t.Fatalf("want a DNS finding naming shop/egress-web-only, got %+v", dns)
	}
	if s := rec.byID("policy.selects-nothing"); len(s) != 1 || s[0].Subject.Name != "stale" {
		t.Errorf("want shop/stale to select nothing, got %+v", s)
	}
	if p := rec.byID("policy.peer-matches-nothing"); len(p) != 1 {
		t.Errorf("want the access=true peer to match nothing, got %+v", p)
	}
	report := model.NewReport(model.Cluster{}, metav1.Now().Time)
	for _, f := range probes.Merge(rec.findings) {
		f.Probe = "policy"
		report.Add(f)
	}
	if err := report.Validate(); err != nil {
		t.Error(err)
	}
}

func TestLintNamedPortMissing(t *testing.T) {
	pods, nss := upstreamModel()
	e := Compile(pods, nss, []*networkingv1.NetworkPolicy{np("x", "typo", nil, tIn,
		[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptrTo(intstr.FromString("serve-8o-tcp"))}}}}, nil)})
	var ids []string
	for _, f := range e.Lint("") {
		ids = append(ids, f.ID)
	}
	if strings.Join(ids, ",") != "policy.named-port-missing" {
		t.Fatalf("got %v", ids)
	}
}

func TestHostNetworkExempt(t *testing.T) {
	pods, nss := upstreamModel()
	pods[0].HostNetwork = true // x/a
	e := Compile(pods, nss, []*networkingv1.NetworkPolicy{np("x", "deny-all", nil, tBoth, nil, nil)})
	v := e.Check(Endpoint{Pod: 3}, Endpoint{Pod: 0}, tcp80) // y/a -> x/a
	if !v.Allowed() || !strings.Contains(e.Explain(v)[1], "host network") {
		t.Fatalf("hostNetwork destination must be exempt: %v", e.Explain(v))
	}
}

func TestMatrixQuestion(t *testing.T) {
	pods, nss := upstreamModel()
	e := Compile(pods, nss, []*networkingv1.NetworkPolicy{np("x", "deny-ingress", nil, tIn, nil, nil)})
	f, err := e.Question("x/*", "y/*:80")
	if err != nil {
		t.Fatal(err)
	}
	want := "tcp/80\tx/a\tx/b\tx/c\ty/a\ty/b\ty/c"
	if f.ID != "policy.matrix" || f.Evidence[0] != want || f.Evidence[4] != "y/a\tX\tX\tX\t.\t.\t." {
		t.Fatalf("got %q", f.Evidence)
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]Port{"80": tcp80, "80/tcp": tcp80, "udp/53": {53, corev1.ProtocolUDP}, "53/UDP": {53, corev1.ProtocolUDP}, "81/sctp": {81, corev1.ProtocolSCTP}} {
		if got, err := ParsePort(in); err != nil || got != want {
			t.Errorf("ParsePort(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "70000", "80/icmp", "http"} {
		if _, err := ParsePort(in); err == nil {
			t.Errorf("ParsePort(%q) should fail", in)
		}
	}
}

// TestEgressToAnAddress: an egress policy's ipBlock admits an off-cluster
// address and denies the others; the answer names the address.
func TestEgressToAnAddress(t *testing.T) {
	tcp := corev1.ProtocolTCP
	web := Pod{Namespace: "shop", Name: "web", Labels: map[string]string{"app": "web"}, IPs: []netip.Addr{netip.MustParseAddr("10.244.0.5")}}
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "egress-subnet"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "192.168.2.0/24"}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp}}}}}}
	e := Compile([]Pod{web}, []Namespace{{Name: "shop"}}, []*networkingv1.NetworkPolicy{np})
	src, _ := e.PodEndpoint("shop/web")
	if v := e.Check(src, e.IPEndpoint(netip.MustParseAddr("192.168.2.10")), Port{80, tcp}); !v.Allowed() {
		t.Errorf("192.168.2.10 is in the ipBlock: %+v", v)
	}
	v := e.Check(src, e.IPEndpoint(netip.MustParseAddr("10.9.9.9")), Port{80, tcp})
	f := e.Finding(src, e.IPEndpoint(netip.MustParseAddr("10.9.9.9")), v)
	if v.Allowed() || f.Subject.Kind != "Address" || !strings.Contains(f.RootCause, "shop/egress-subnet") || len(f.Fixes) == 0 {
		t.Errorf("want a denial naming shop/egress-subnet: %+v", f)
	}
}
