package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
)

// labConfig is a healthy kubelet's configz object, as the lab serves it.
const labConfig = `{"authentication":{"anonymous":{"enabled":false},"webhook":{"enabled":true}},
 "authorization":{"mode":"Webhook"},"cgroupDriver":"cgroupfs","clusterDNS":["10.96.0.10"],
 "clusterDomain":"cluster.local","makeIPTablesUtilChains":true,"maxPods":110}`

func config(t *testing.T, patch map[string]any) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(labConfig), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range patch {
		if v == nil {
			delete(m, k)
			continue
		}
		b, _ := json.Marshal(v)
		var g any
		_ = json.Unmarshal(b, &g)
		m[k] = g
	}
	return m
}

var labDNS = DNSView{Known: true, ServiceIPs: []string{"10.96.0.10"}, Zones: []string{"cluster.local"}}

func node(t *testing.T, name string, patch map[string]any) Node {
	return Node{Name: name, PodCIDRs: []string{"10.244.1.0/24"}, Runtime: "containerd://1.7.2", Config: config(t, patch)}
}

func input(ns ...Node) Input {
	return Input{Nodes: ns, Checks: checks().Checks, Table: table(), DNS: labDNS}
}

func TestAnalyzeHealthyReportsEveryCheckPerNode(t *testing.T) {
	got := Analyze(input(node(t, "n1", nil), node(t, "n2", nil)))
	kubetest.CheckContract(t, got)
	if want := 2 * (len(checks().Checks) + 1); len(got) != want {
		t.Fatalf("got %d findings, want %d (one per check per node)", len(got), want)
	}
	for _, f := range got {
		if f.Status != model.StatusPass {
			t.Errorf("healthy: %s %s %s", f.ID, f.Status, f.Title)
		}
	}
	f, _ := kubetest.Find(got, IDClusterDNS, "n1")
	if !strings.Contains(f.Title, "10.96.0.10 is the kube-dns Service ClusterIP") {
		t.Errorf("pass title should say what was verified: %q", f.Title)
	}
}

func TestAnalyzeFailures(t *testing.T) {
	cases := []struct {
		name      string
		patch     map[string]any
		id        string
		status    model.Status
		rootCause string
	}{
		{"iptables chains off", map[string]any{"makeIPTablesUtilChains": false}, IDMakeIPTablesUtilChains, model.StatusFail, "makeIPTablesUtilChains=false"},
		{"anonymous on", map[string]any{"authentication": map[string]any{"anonymous": map[string]any{"enabled": true}}}, "kubelet.anonymous-auth", model.StatusFail, "system:anonymous"},
		{"AlwaysAllow", map[string]any{"authorization": map[string]any{"mode": "AlwaysAllow"}}, "kubelet.authorization-mode", model.StatusFail, "mode=AlwaysAllow"},
		{"read-only port", map[string]any{"readOnlyPort": 10255}, "kubelet.read-only-port", model.StatusFail, "port 10255"},
		{"clusterDNS unused IP", map[string]any{"clusterDNS": []string{"10.96.0.99"}}, IDClusterDNS, model.StatusFail, "nameserver 10.96.0.99.*10.96.0.10"},
		{"clusterDNS empty", map[string]any{"clusterDNS": nil}, IDClusterDNS, model.StatusFail, `\(empty\)`},
		{"clusterDomain typo", map[string]any{"clusterDomain": "cluster.lcoal"}, "kubelet.cluster-domain", model.StatusFail, "cluster.lcoal.*serves cluster.local"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Analyze(input(node(t, "n1", c.patch)))
			kubetest.CheckContract(t, got)
			f, ok := kubetest.Find(got, c.id, "n1")
			if !ok || f.Status != c.status {
				t.Fatalf("want %s %s, got %+v", c.id, c.status, f)
			}
			if !regexpMatch(c.rootCause, f.RootCause) {
				t.Errorf("root cause %q does not match %q", f.RootCause, c.rootCause)
			}
			if strings.Contains(f.RootCause+f.Title, "{{") || !strings.Contains(f.RootCause, "n1") {
				t.Errorf("template not rendered for the node: %q", f.RootCause)
			}
			for _, g := range got {
				if g.ID != c.id && g.Status != model.StatusPass {
					t.Errorf("unrelated finding %s %s", g.ID, g.Status)
				}
			}
		})
	}
}

func TestMakeIPTablesUtilChainsCarriesTheThreeSeedMethods(t *testing.T) {
	got := Analyze(input(node(t, "worker-7", map[string]any{"makeIPTablesUtilChains": false})))
	f, _ := kubetest.Find(got, IDMakeIPTablesUtilChains, "worker-7")
	// First the generated, paste-safe edit on the node; then the seed's three methods.
	if len(f.Fixes) != 5 || f.Fixes[0].Node != "worker-7" || !strings.Contains(strings.Join(f.Fixes[0].Commands, "\n"), "-v k='makeIPTablesUtilChains' -v v='true'") {
		t.Fatalf("want the generated edit then the three remediation methods, got %+v", f.Fixes)
	}
	for i, want := range []string{"Method 1", "Method 2", "Method 3"} {
		if !strings.HasPrefix(f.Fixes[i+2].Description, want) {
			t.Errorf("fix %d: %q", i+2, f.Fixes[i+2].Description)
		}
	}
	all := strings.Join(append(append(f.Fixes[2].Commands, f.Fixes[3].Commands...), f.Fixes[4].Commands...), "\n")
	for _, want := range []string{"10-kubelet-args.conf", "--make-iptables-util-chains=true", "systemctl daemon-reload", "NODE_NAME=worker-7", "/api/v1/nodes/worker-7/proxy/configz"} {
		if !strings.Contains(all, want) {
			t.Errorf("fixes lack %q:\n%s", want, all)
		}
	}
}

func TestDefaultsApplyWhenConfigzOmitsAField(t *testing.T) {
	// v1beta1 omits zero values: readOnlyPort 0 does not appear in configz.
	got := Analyze(input(node(t, "n1", map[string]any{"makeIPTablesUtilChains": nil})))
	for _, id := range []string{"kubelet.read-only-port", IDMakeIPTablesUtilChains} {
		if f, _ := kubetest.Find(got, id, "n1"); f.Status != model.StatusPass {
			t.Errorf("%s: %s %v", id, f.Status, f.Evidence)
		}
	}
}

func TestCgroupDriverMismatchAmongSameRuntime(t *testing.T) {
	odd := node(t, "c", map[string]any{"cgroupDriver": "systemd"})
	crio := node(t, "d", map[string]any{"cgroupDriver": "systemd"})
	crio.Runtime = "cri-o://1.30.0"
	got := Analyze(input(node(t, "a", nil), node(t, "b", nil), odd, crio))
	kubetest.CheckContract(t, got)
	if f, _ := kubetest.Find(got, "kubelet.cgroup-driver", "c"); f.Status != model.StatusWarn || !strings.Contains(f.RootCause, "cgroupfs") {
		t.Errorf("odd containerd node: %+v", f)
	}
	for _, n := range []string{"a", "b", "d"} {
		if f, _ := kubetest.Find(got, "kubelet.cgroup-driver", n); f.Status != model.StatusPass {
			t.Errorf("node %s: %s %s", n, f.Status, f.Title)
		}
	}
}

func TestClusterDNSNodeLocalAndUnknown(t *testing.T) {
	in := input(node(t, "n1", map[string]any{"clusterDNS": []string{"169.254.20.10"}}))
	in.DNS.NodeLocalIPs = []string{"169.254.20.10", "10.96.0.10"}
	if f, _ := kubetest.Find(Analyze(in), IDClusterDNS, "n1"); f.Status != model.StatusPass || !strings.Contains(f.Title, "NodeLocal") {
		t.Errorf("NodeLocal address: %+v", f)
	}
	in.DNS = DNSView{Note: "forbidden"}
	got := Analyze(in)
	kubetest.CheckContract(t, got)
	if f, _ := kubetest.Find(got, IDClusterDNS, "n1"); f.Status != model.StatusSkip {
		t.Errorf("unknown DNS must skip, got %+v", f)
	}
	if f, _ := kubetest.Find(got, "kubelet.cluster-domain", "n1"); f.Status != model.StatusSkip {
		t.Errorf("unknown zones must skip, got %+v", f)
	}
}

func fakeConfigz(cfgs map[string]string, err error) func(context.Context, *probes.Env, string) (*kubeletv1beta1.KubeletConfiguration, error) {
	return func(_ context.Context, _ *probes.Env, node string) (*kubeletv1beta1.KubeletConfiguration, error) {
		if err != nil {
			return nil, err
		}
		raw, ok := cfgs[node]
		if !ok {
			return nil, errors.New("dial tcp 10.0.0.9:10250: connect: connection refused")
		}
		return kube.DecodeConfigz([]byte(`{"kubeletconfig":` + raw + `}`))
	}
}

func labCluster(extra ...runtime.Object) *fake.Clientset {
	mk := func(name, cidr string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
			Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{ContainerRuntimeVersion: "containerd://1.6.20"},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"}}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"},
		Data: map[string]string{"Corefile": ".:53 {\n kubernetes cluster.local in-addr.arpa ip6.arpa\n forward . 10.250.0.53\n}\n"}}
	return fake.NewClientset(append([]runtime.Object{mk("nsl-node1", "10.244.0.0/24"), mk("nsl-node2", "10.244.1.0/24"), svc, cm}, extra...)...)
}

// A node whose kubelet stopped reporting is not read through configz (the
// call could only time out): the probe says it left it out, citing
// nodes.not-ready, instead of an error per node.
func TestRunSkipsNodesWhoseKubeletIsNotReporting(t *testing.T) {
	silent := kubetest.SyntheticNodes(1, func(int) bool { return false })[0] // Ready=Unknown
	var mu sync.Mutex
	read := map[string]bool{}
	configz := fakeConfigz(map[string]string{"nsl-node1": labConfig, "nsl-node2": labConfig}, nil)
	p := probe{configz: func(ctx context.Context, env *probes.Env, node string) (*kubeletv1beta1.KubeletConfiguration, error) {
		mu.Lock()
		read[node] = true
		mu.Unlock()
		return configz(ctx, env, node)
	}}
	rec := &kubetest.Recorder{}
	if err := p.Run(context.Background(), &probes.Env{Kube: labCluster(&silent)}, rec); err != nil {
		t.Fatal(err)
	}
	kubetest.CheckContract(t, rec.Findings)
	if read[silent.Name] || !read["nsl-node1"] || !read["nsl-node2"] {
		t.Errorf("configz read on %v; want the two Ready nodes only", read)
	}
	if kubetest.Count(rec.Findings, IDConfigzUnread, model.StatusError) != 0 {
		t.Error("a configz-unreadable error for the node that is not reporting")
	}
	cause, ok := kubetest.Find(rec.Findings, kube.IDNodesNotReady, "nodes")
	sym, ok2 := kubetest.Find(rec.Findings, "kubelet.nodes-skipped", "nodes")
	if !ok || !ok2 || sym.CausedBy != cause.Key || !strings.Contains(sym.Title, "1 node(s) that are not Ready: node-0000") {
		t.Errorf("cause %+v\nsymptom %+v", cause, sym)
	}
}

func TestRunWithFakeClientset(t *testing.T) {
	bad := strings.Replace(labConfig, `"clusterDNS":["10.96.0.10"]`, `"clusterDNS":["10.96.0.99"]`, 1)
	p := probe{configz: fakeConfigz(map[string]string{"nsl-node1": labConfig, "nsl-node2": bad}, nil)}
	rec := &kubetest.Recorder{}
	if err := p.Run(context.Background(), &probes.Env{Kube: labCluster()}, rec); err != nil {
		t.Fatal(err)
	}
	kubetest.CheckContract(t, rec.Findings)
	f, ok := kubetest.Find(rec.Findings, IDClusterDNS, "nsl-node2")
	if !ok || f.Status != model.StatusFail || !strings.Contains(f.Title, "10.96.0.99") {
		t.Fatalf("clusterDNS fault on nsl-node2 not found: %+v", f)
	}
	if f, _ := kubetest.Find(rec.Findings, "kubelet.cluster-domain", "nsl-node1"); f.Status != model.StatusPass {
		t.Errorf("cluster domain from the Corefile: %+v", f)
	}
}

func TestRunUnreachableKubeletIsAnErrorFindingPerNode(t *testing.T) {
	p := probe{configz: fakeConfigz(map[string]string{"nsl-node1": labConfig}, nil)}
	rec := &kubetest.Recorder{}
	if err := p.Run(context.Background(), &probes.Env{Kube: labCluster()}, rec); err != nil {
		t.Fatal(err)
	}
	kubetest.CheckContract(t, rec.Findings)
	if f, ok := kubetest.Find(rec.Findings, IDConfigzUnread, "nsl-node2"); !ok || f.Status != model.StatusError || !strings.Contains(f.RootCause, "connection refused") {
		t.Errorf("%+v", f)
	}
}

func TestRunForbiddenReturnsTheError(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "nodes/proxy"}, "nsl-node1",
		errors.New(`User "x" cannot get resource "nodes/proxy" at the cluster scope`))
	p := probe{configz: fakeConfigz(nil, forbidden)}
	rec := &kubetest.Recorder{}
	err := p.Run(context.Background(), &probes.Env{Kube: labCluster()}, rec)
	if !apierrors.IsForbidden(err) || len(rec.Findings) != 0 {
		t.Fatalf("want the forbidden error for the runner, got %v and %d findings", err, len(rec.Findings))
	}
	// client-go sometimes cannot decode the proxy's denial: restate it.
	opaque := apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "nsl-node1", errors.New("unknown"))
	p = probe{configz: fakeConfigz(nil, opaque)}
	err = p.Run(context.Background(), &probes.Env{Kube: labCluster()}, &kubetest.Recorder{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `cannot get resource "nodes/proxy" at the cluster scope`) {
		t.Errorf("denial not restated: %v", err)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

func TestEveryCatalogueTemplateRenders(t *testing.T) {
	for _, c := range checks().Checks {
		for _, st := range []model.Status{model.StatusPass, model.StatusFail} {
			f := render(c, Node{Name: "n1"}, &model.Subject{Kind: "Node", Name: "n1"}, outcome{Status: st, Actual: "a", Expected: "e", Detail: "d"}, Input{})
			text := f.Title + f.RootCause
			for _, fx := range f.Fixes {
				text += fx.Description + strings.Join(fx.Commands, "")
			}
			if strings.Contains(text, "{{") || f.Title == "" {
				t.Errorf("check %s (%s) does not render: %q", c.ID, st, text)
			}
		}
	}
}

func TestFirstFixSetsTheFieldFromConfigz(t *testing.T) {
	cases := []struct {
		patch       map[string]any
		id, setting string
	}{
		{map[string]any{"readOnlyPort": 10255}, "kubelet.read-only-port", "-v k='readOnlyPort' -v v='0'"},
		{map[string]any{"authentication": map[string]any{"anonymous": map[string]any{"enabled": true}, "x509": map[string]any{"clientCAFile": "/ca.crt"}}},
			"kubelet.anonymous-auth", `-v k='authentication' -v v='{"anonymous":{"enabled":false},`},
		{map[string]any{"clusterDomain": "cluster.lcoal"}, "kubelet.cluster-domain", `-v k='clusterDomain' -v v='"cluster.local"'`},
	}
	for _, c := range cases {
		f, _ := kubetest.Find(Analyze(input(node(t, "n1", c.patch))), c.id, "n1")
		if len(f.Fixes) == 0 || f.Fixes[0].Node != "n1" || !strings.Contains(strings.Join(f.Fixes[0].Commands, "\n"), c.setting) {
			t.Errorf("%s: first fix %+v lacks %s", c.id, f.Fixes, c.setting)
		}
	}
	// The nested value keeps the fields configz had (the client CA).
	f, _ := kubetest.Find(Analyze(input(node(t, "n1", cases[1].patch))), "kubelet.anonymous-auth", "n1")
	if !strings.Contains(f.Fixes[0].Commands[0], `"clientCAFile":"/ca.crt"`) {
		t.Errorf("nested edit dropped x509: %s", f.Fixes[0].Commands[0])
	}
}
