package dns

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/clusterdns"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
	"github.com/netsleuth/netsleuth/probes/servicediag"
)

// labCorefile is the lab cluster's Corefile.
const labCorefile = `.:53 {
    errors
    health {
        lameduck 2s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
    forward . 10.250.0.53   # the lab's upstream
    cache 30
    loop
}
`

func labTopology() clusterdns.Topology {
	cf := clusterdns.ParseCorefile(labCorefile)
	return clusterdns.Topology{
		Service: &clusterdns.Service{Namespace: clusterdns.SystemNS, Name: clusterdns.ServiceName, ClusterIPs: []string{"10.96.0.10"}},
		Endpoints: []clusterdns.Endpoint{{IP: "10.244.0.20", Node: "n1", Pod: "coredns-a", Ready: true},
			{IP: "10.244.1.14", Node: "n2", Pod: "coredns-b", Ready: true}},
		Pods: []clusterdns.Pod{{Name: "coredns-a", Node: "n1", IP: "10.244.0.20", Ready: true, Phase: "Running"},
			{Name: "coredns-b", Node: "n2", IP: "10.244.1.14", Ready: true, Phase: "Running"}},
		Corefile: &cf, CorefileSource: "ConfigMap kube-system/coredns",
		ProxyMode: "iptables", ProxyModeSource: "test",
	}
}

func labNodes() []NodeDNS {
	return []NodeDNS{{Name: "n1", ClusterDNS: []string{"10.96.0.10"}}, {Name: "n2", ClusterDNS: []string{"10.96.0.10"}}}
}

func withNodeLocal(t clusterdns.Topology, ready map[string]bool) clusterdns.Topology {
	t.NodeLocal = clusterdns.NodeLocal{Present: true, Name: clusterdns.NodeLocalName, Addresses: []string{"169.254.20.10", "10.96.0.10"}, Source: "test"}
	for n, r := range ready {
		t.NodeLocal.Pods = append(t.NodeLocal.Pods, clusterdns.Pod{Name: "node-local-dns-" + n, Node: n, Ready: r, Phase: "Running"})
	}
	return t
}

func TestAnalyzeHealthy(t *testing.T) {
	got := Analyze(Input{Topology: labTopology(), Nodes: labNodes()})
	kubetest.CheckContract(t, got)
	for _, f := range got {
		if f.Status != model.StatusPass && f.ID != IDNodeLocal {
			t.Errorf("healthy: %s %s %s", f.ID, f.Status, f.Title)
		}
	}
	if kubetest.Count(got, clusterdns.IDKubeletDNS, model.StatusPass) != 2 {
		t.Errorf("want per-node clusterDNS passes: %+v", got)
	}
}

func TestAnalyzeBrokenHops(t *testing.T) {
	noSvc := labTopology()
	noSvc.Service = nil
	noFwd := labTopology()
	cf := clusterdns.ParseCorefile(".:53 {\n kubernetes cluster.local\n}")
	noFwd.Corefile = &cf
	half := labTopology()
	half.Pods[1].Ready = false
	badDNS := labNodes()
	badDNS[1].ClusterDNS = []string{"10.96.0.99"}
	ipvs := withNodeLocal(labTopology(), map[string]bool{"n1": true, "n2": true})
	ipvs.ProxyMode = "ipvs"
	nlDown := withNodeLocal(labTopology(), map[string]bool{"n1": true, "n2": false})
	nlNodes := labNodes()
	nlNodes[1].ClusterDNS = []string{"169.254.20.10"}
	nlSel := withNodeLocal(labTopology(), map[string]bool{"n1": true})
	nlSel.NodeLocal.NodeSelector = map[string]string{"kubernetes.io/hostname": "n1"}
	selNodes := labNodes()
	selNodes[1].ClusterDNS = []string{"169.254.20.10"}
	selNodes[0].Labels, selNodes[1].Labels = map[string]string{"kubernetes.io/hostname": "n1"}, map[string]string{"kubernetes.io/hostname": "n2"}
	cases := []struct {
		name      string
		in        Input
		id        string
		status    model.Status
		subject   string
		rootCause string
		fix       string
	}{
		{"no service", Input{Topology: noSvc, Nodes: labNodes()}, IDServiceMissing, model.StatusFail, "kube-dns", "no Service", "expose"},
		{"no upstream", Input{Topology: noFwd, Nodes: labNodes()}, IDNoForward, model.StatusWarn, "coredns", "no forward", "forward ."},
		{"one pod not ready", Input{Topology: half, Nodes: labNodes()}, IDPodsNotReady, model.StatusWarn, "coredns", "coredns-b", "describe pod coredns-b"},
		{"clusterDNS unused IP", Input{Topology: labTopology(), Nodes: badDNS}, clusterdns.IDKubeletDNS, model.StatusFail, "n2", "nameserver 10.96.0.99", "clusterDNS: [10.96.0.10]"},
		{"ipvs without node-local clusterDNS", Input{Topology: ipvs, Nodes: labNodes()}, clusterdns.IDKubeletDNS, model.StatusWarn, "n1", "IPVS mode", "clusterDNS: [169.254.20.10]"},
		{"node-local excluded by its nodeSelector", Input{Topology: nlSel, Nodes: selNodes}, IDNodeLocalMissing, model.StatusFail, "n2",
			"nodeSelector \\(kubernetes.io/hostname=n1\\) excludes it", `"nodeSelector":{"kubernetes.io/hostname":null}`},
		{"node-local down where kubelet uses it", Input{Topology: nlDown, Nodes: nlNodes}, IDNodeLocalMissing, model.StatusFail, "n2", "169.254.20.10.*not Ready", "node-local-dns"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Analyze(c.in)
			kubetest.CheckContract(t, got)
			f, ok := kubetest.Find(got, c.id, c.subject)
			if !ok || f.Status != c.status {
				t.Fatalf("want %s %s on %s; got %+v", c.id, c.status, c.subject, got)
			}
			if !regexp.MustCompile(c.rootCause).MatchString(f.RootCause) {
				t.Errorf("root cause %q does not match %q", f.RootCause, c.rootCause)
			}
			if !fixMentions(f, c.fix) {
				t.Errorf("no fix mentions %q: %+v", c.fix, f.Fixes)
			}
		})
	}
}

func TestNodeLocalHealthyAndNodeLocalClusterDNS(t *testing.T) {
	nodes := labNodes()
	nodes[0].ClusterDNS = []string{"169.254.20.10"}
	got := Analyze(Input{Topology: withNodeLocal(labTopology(), map[string]bool{"n1": true, "n2": true}), Nodes: nodes})
	kubetest.CheckContract(t, got)
	if kubetest.Count(got, IDNodeLocalReady, model.StatusPass) != 2 {
		t.Errorf("want NodeLocal ready on both nodes: %+v", got)
	}
	if f, _ := kubetest.Find(got, clusterdns.IDKubeletDNS, "n1"); f.Status != model.StatusPass || !strings.Contains(f.Title, "NodeLocal") {
		t.Errorf("%+v", f)
	}
}

func fixMentions(f model.Finding, s string) bool {
	for _, x := range f.Fixes {
		if strings.Contains(x.Description+x.Manifest+strings.Join(x.Commands, "\n"), s) {
			return true
		}
	}
	return false
}

func fakeCluster(objs ...any) kubernetes.Interface {
	ready := true
	reporting := corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
	base := []any{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: reporting},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Status: reporting},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: clusterdns.SystemNS, Name: clusterdns.ServiceName}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: clusterdns.SystemNS, Name: "kube-dns-x", Labels: map[string]string{"kubernetes.io/service-name": clusterdns.ServiceName}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.20"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				NodeName: ptr.To("n1"), TargetRef: &corev1.ObjectReference{Name: "coredns-a"}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: clusterdns.SystemNS, Name: "coredns-a", Labels: map[string]string{"k8s-app": "kube-dns"}},
			Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.20",
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: clusterdns.SystemNS, Name: "coredns"}, Data: map[string]string{"Corefile": labCorefile}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: clusterdns.SystemNS, Name: "kube-proxy"}, Data: map[string]string{"config.conf": "mode: ipvs\n"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: clusterdns.SystemNS, Name: clusterdns.NodeLocalName},
			Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "node-local-dns"}},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "node-cache",
					Args: []string{"-localip", "169.254.20.10,10.96.0.10", "-conf", "/etc/Corefile"}}}}}}},
	}
	var all []any
	all = append(append(all, base...), objs...)
	rt := make([]runtime.Object, 0, len(all))
	for _, o := range all {
		rt = append(rt, o.(runtime.Object))
	}
	return fake.NewClientset(rt...)
}

func configz(dns map[string]string) func(context.Context, *probes.Env, string) (*kubeletv1beta1.KubeletConfiguration, error) {
	return func(_ context.Context, _ *probes.Env, node string) (*kubeletv1beta1.KubeletConfiguration, error) {
		ip, ok := dns[node]
		if !ok {
			return nil, errors.New("connection refused")
		}
		return &kubeletv1beta1.KubeletConfiguration{ClusterDNS: []string{ip}, ClusterDomain: "cluster.local"}, nil
	}
}

func TestRunWithFakeClientset(t *testing.T) {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "deny-egress"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}}}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app", Labels: map[string]string{"kubernetes.io/metadata.name": "app"}}}
	web := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web"}, Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.5"}}
	p := probe{configz: configz(map[string]string{"n1": "169.254.20.10"})}
	rec := &kubetest.Recorder{}
	if err := p.Run(context.Background(), &probes.Env{Kube: fakeCluster(np, ns, web)}, rec); err != nil {
		t.Fatal(err)
	}
	got := rec.Findings
	kubetest.CheckContract(t, got)
	want := []struct {
		id, subject string
		status      model.Status
	}{
		{servicediag.IDOK, clusterdns.ServiceName, model.StatusPass},
		{IDProxyMode, "kube-proxy", model.StatusPass},
		{IDNodeLocal, clusterdns.NodeLocalName, model.StatusPass},
		{IDNodeLocalMissing, "n1", model.StatusFail},      // kubelet uses 169.254.20.10, no cache pod
		{clusterdns.IDKubeletDNS, "n2", model.StatusSkip}, // configz unreadable
		{"policy.blocks-dns", "deny-egress", model.StatusFail},
	}
	for _, w := range want {
		if f, ok := kubetest.Find(got, w.id, w.subject); !ok || f.Status != w.status {
			t.Errorf("want %s %s on %s; got %+v", w.id, w.status, w.subject, f)
		}
	}
	if f, _ := kubetest.Find(got, IDProxyMode, "kube-proxy"); !strings.Contains(f.Title, "ipvs") {
		t.Errorf("proxy mode: %+v", f)
	}
}

// A node whose kubelet stopped reporting gets no configz read and no
// per-node clusterDNS or NodeLocal verdict: one dns.nodes-skipped cites
// nodes.not-ready for it.
func TestRunSkipsNodesNotReporting(t *testing.T) {
	silent := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n3"}} // no Ready condition: never reported
	var mu sync.Mutex
	read := map[string]bool{}
	cfg := configz(map[string]string{"n1": "10.96.0.10", "n2": "10.96.0.10", "n3": "10.96.0.10"})
	p := probe{static: true, configz: func(ctx context.Context, env *probes.Env, node string) (*kubeletv1beta1.KubeletConfiguration, error) {
		mu.Lock()
		read[node] = true
		mu.Unlock()
		return cfg(ctx, env, node)
	}}
	rec := &kubetest.Recorder{}
	if err := p.Run(context.Background(), &probes.Env{Kube: fakeCluster(silent)}, rec); err != nil {
		t.Fatal(err)
	}
	kubetest.CheckContract(t, rec.Findings)
	if read["n3"] || !read["n1"] || !read["n2"] {
		t.Errorf("configz read on %v, want n1 and n2", read)
	}
	for _, f := range rec.Findings {
		if f.Subject != nil && f.Subject.Name == "n3" {
			t.Errorf("a per-node finding about the silent node: %s %s", f.ID, f.Title)
		}
	}
	cause, ok := kubetest.Find(rec.Findings, kube.IDNodesNotReady, "nodes")
	sym, ok2 := kubetest.Find(rec.Findings, "dns.nodes-skipped", "nodes")
	if !ok || !ok2 || sym.CausedBy != cause.Key || !strings.Contains(sym.Title, "clusterDNS (configz) of 1 node(s) that are not Ready: n3") {
		t.Errorf("cause %+v\nsymptom %+v", cause, sym)
	}
}
