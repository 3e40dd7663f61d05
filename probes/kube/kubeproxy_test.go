package kube

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func TestProxyModeFromConfig(t *testing.T) {
	for conf, want := range map[string]struct {
		mode string
		ok   bool
	}{
		"mode: ipvs\n":                   {"ipvs", true},
		"kind: X\nmode: \"IPVS\"\n":      {"ipvs", true},
		"kind: X\nmode: \"\"\n":          {"", true},
		"kind: X\n":                      {"", true},
		"":                               {"", false},
		"mode: [unclosed\n":              {"", false},
		"apiVersion: v1\nmode: nftables": {"nftables", true},
	} {
		if m, ok := ProxyModeFromConfig(conf); m != want.mode || ok != want.ok {
			t.Errorf("ProxyModeFromConfig(%q) = %q, %v; want %q, %v", conf, m, ok, want.mode, want.ok)
		}
	}
}

func TestDiscoverKubeProxy(t *testing.T) {
	cm := func(conf string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"}, Data: map[string]string{"config.conf": conf}}
	}
	pod := func(node string, args ...string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy-" + node, Labels: map[string]string{"k8s-app": "kube-proxy"}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "kube-proxy", Command: []string{"kube-proxy"}, Args: args}}}}
	}
	ready := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	for name, c := range map[string]struct {
		objs         []runtime.Object
		mode, source string
		pods, notes  int
	}{
		"kubeadm ConfigMap":             {[]runtime.Object{cm("kind: KubeProxyConfiguration\nmode: ipvs\n"), pod("n1")}, "ipvs", "ConfigMap kube-system/kube-proxy", 1, 0},
		"empty mode":                    {[]runtime.Object{cm("kind: KubeProxyConfiguration\nmode: \"\"\n")}, "iptables", "which means iptables", 0, 0},
		"flag wins without a ConfigMap": {[]runtime.Object{pod("n1", "--proxy-mode=nftables"), pod("n2")}, "nftables", "flag --proxy-mode of pod kube-system/kube-proxy-n1", 2, 0},
		// The fake clientset has no REST client for the node proxy: the
		// /proxyMode read fails and says so.
		"nothing in the API": {[]runtime.Object{ready}, "", "/proxyMode not reachable", 0, 1},
	} {
		t.Run(name, func(t *testing.T) {
			s := NewSnapshot(fake.NewClientset(c.objs...), "")
			p := DiscoverKubeProxy(context.Background(), s)
			if p.Mode != c.mode || !strings.Contains(p.Source, c.source) || len(p.Pods) != c.pods || len(p.Notes) != c.notes {
				t.Errorf("got mode %q from %q, %d pods, notes %q; want %q from …%q…, %d pods, %d notes", p.Mode, p.Source, len(p.Pods), p.Notes, c.mode, c.source, c.pods, c.notes)
			}
			if again := DiscoverKubeProxy(context.Background(), s); again.Source != p.Source {
				t.Errorf("a second read differs: %q then %q", p.Source, again.Source)
			}
		})
	}
}
