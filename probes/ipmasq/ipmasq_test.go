package ipmasq

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
)

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestCovered(t *testing.T) {
	cases := []struct {
		p    string
		set  []string
		want bool
	}{
		{"10.244.1.0/24", []string{"10.244.0.0/16"}, true},
		{"10.244.1.0/24", []string{"10.244.1.0/24"}, true},
		{"10.244.0.0/23", []string{"10.244.0.0/24", "10.244.1.0/24"}, true},
		{"10.244.0.0/23", []string{"10.244.0.0/24"}, false},
		{"10.244.0.0/16", []string{"10.244.0.0/17"}, false},
		{"100.64.1.0/24", []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}, false},
		{"fd00::/64", []string{"10.0.0.0/8"}, false},
		{"fd00::/64", []string{"fd00::/48"}, true},
	}
	for _, c := range cases {
		if got := Covered(netip.MustParsePrefix(c.p), pfx(c.set...)); got != c.want {
			t.Errorf("Covered(%s, %v) = %v, want %v", c.p, c.set, got, c.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	no := false
	cases := []struct {
		name, doc string
		wantErr   string
		wantCIDRs string
		unknown   string
	}{
		{"yaml", "nonMasqueradeCIDRs:\n  - 10.244.0.0/16\nmasqLinkLocal: true\nresyncInterval: 60s\n", "", "[10.244.0.0/16]", ""},
		{"json as agent allows", `{"nonMasqueradeCIDRs":["10.0.0.0/8"],"resyncInterval":"1m0s"}`, "", "[10.0.0.0/8]", ""},
		{"omitted list keeps defaults", "masqLinkLocal: true\n", "", "[10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]", ""},
		{"misspelt key", "nonMasqueradeCidr:\n  - 10.244.0.0/16\n", "", "[10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]", "nonMasqueradeCidr"},
		{"garbled yaml", "nonMasqueradeCIDRs: [10.0.0.0/8\nresync: :", "YAML", "", ""},
		{"bad cidr", "nonMasqueradeCIDRs: [10.0.0.0/33]\n", "nonMasqueradeCIDRs", "", ""},
		{"unaligned", "nonMasqueradeCIDRs: [10.244.1.0/16]\n", "not aligned", "", ""},
		{"bad interval", "resyncInterval: soon\n", "resyncInterval", "", ""},
		{"ipv6 disabled", "nonMasqueradeCIDRs: [fd00::/48]\n", "--enable-ipv6", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseConfig(c.doc, Defaults(false), &no)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := prefixList(got.NonMasqueradeCIDRs); s != c.wantCIDRs {
				t.Errorf("cidrs %s, want %s", s, c.wantCIDRs)
			}
			if u := strings.Join(got.UnknownKeys, ","); u != c.unknown {
				t.Errorf("unknown %q, want %q", u, c.unknown)
			}
		})
	}
}

func nodes() []Node {
	return []Node{{Name: "lab-1", PodCIDRs: []string{"10.244.0.0/24"}}, {Name: "lab-2", PodCIDRs: []string{"10.245.0.0/24"}}}
}

func TestAnalyze(t *testing.T) {
	agent := Agent{Found: true, Ready: 2, Scheduled: 2, Args: []string{"--masq-chain=IP-MASQ-AGENT"}}
	net := kube.ClusterNetwork{Source: "kcm", ClusterCIDRs: pfx("10.244.0.0/15")}
	cases := []struct {
		name string
		in   Input
		want map[string]model.Status
		n    int
	}{
		{"absent", Input{Nodes: nodes()}, map[string]model.Status{IDNotConfigured: model.StatusSkip}, 1},
		{"covers all", Input{Config: map[string]string{"config": "nonMasqueradeCIDRs: [10.244.0.0/15]\n"}, Agent: agent, Nodes: nodes(), Network: net},
			map[string]model.Status{IDCovered: model.StatusPass}, 2},
		{"misses one node and part of cluster CIDR", Input{Config: map[string]string{"config": "nonMasqueradeCIDRs: [10.244.0.0/16]\n"}, Agent: agent, Nodes: nodes(), Network: net},
			map[string]model.Status{IDCovered: model.StatusPass, IDMasqueraded: model.StatusFail, IDClusterMasquerade: model.StatusWarn}, 3},
		{"garbled", Input{Config: map[string]string{"config": "nonMasqueradeCIDRs: [10.0.0.0/8\n"}, Agent: agent, Nodes: nodes()},
			map[string]model.Status{IDConfigInvalid: model.StatusFail}, 1},
		{"no config key uses defaults", Input{Config: map[string]string{}, Agent: agent, Nodes: []Node{{Name: "a", PodCIDRs: []string{"100.64.0.0/24"}}}},
			map[string]model.Status{IDMasqueraded: model.StatusFail}, 1},
		{"agent without ConfigMap uses defaults", Input{Agent: agent, Nodes: nodes()},
			map[string]model.Status{IDCovered: model.StatusPass}, 2},
		{"unknown key", Input{Config: map[string]string{"config": "nonMasqueradeCIDRs: [10.0.0.0/8]\nresync: 60s\n"}, Agent: agent, Nodes: nodes()},
			map[string]model.Status{IDUnknownKey: model.StatusWarn, IDCovered: model.StatusPass}, 3},
		{"no node CIDRs", Input{Config: map[string]string{"config": "nonMasqueradeCIDRs: [10.0.0.0/8]\n"}, Nodes: []Node{{Name: "a"}}},
			map[string]model.Status{IDNoNodeCIDRs: model.StatusSkip}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Analyze(c.in)
			kubetest.Expect(t, got, c.n, c.want)
		})
	}
}

func TestCorrectedManifest(t *testing.T) {
	got := Analyze(Input{Config: map[string]string{"config": "nonMasqueradeCIDRs: [10.244.0.0/16]\nmasqLinkLocal: true\nresyncInterval: 30s\n"}, Nodes: nodes()})
	f, ok := kubetest.Find(got, IDMasqueraded, "lab-2")
	if !ok {
		t.Fatalf("no finding for lab-2: %+v", got)
	}
	want := `apiVersion: v1
kind: ConfigMap
metadata:
  name: ip-masq-agent
  namespace: kube-system
data:
  config: |
    nonMasqueradeCIDRs:
      - 10.244.0.0/16
      - 10.245.0.0/24
    masqLinkLocal: true
    resyncInterval: 30s
`
	if f.Fixes[0].Manifest != want {
		t.Errorf("manifest:\n%s\nwant:\n%s", f.Fixes[0].Manifest, want)
	}
	if !strings.HasPrefix(f.RootCause, "ip-masq-agent's nonMasqueradeCIDRs ([10.244.0.0/16]) do not include node lab-2's pod CIDR 10.245.0.0/24") {
		t.Errorf("root cause %q", f.RootCause)
	}
}

func TestRunWithFakeClient(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: Name}, Data: map[string]string{"config": "nonMasqueradeCIDRs: [192.168.0.0/16]\n"}}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: Name}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "lab-1"}, Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24"}}}
	rec := &kubetest.Recorder{}
	if err := New().Run(context.Background(), &probes.Env{Kube: fake.NewClientset(cm, ds, node)}, rec); err != nil {
		t.Fatal(err)
	}
	kubetest.CheckContract(t, rec.Findings)
	if kubetest.Count(rec.Findings, IDMasqueraded, model.StatusFail) != 1 || len(rec.Stages) != 4 {
		t.Errorf("findings %+v stages %v", rec.Findings, rec.Stages)
	}
	rec = &kubetest.Recorder{}
	if err := New().Run(context.Background(), &probes.Env{Kube: fake.NewClientset(node)}, rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.Findings) != 1 || rec.Findings[0].ID != IDNotConfigured {
		t.Errorf("absent agent: %+v", rec.Findings)
	}
}
