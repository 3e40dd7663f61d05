package kube

import (
	"context"
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
)

func TestDecodeConfigz(t *testing.T) {
	cfg, err := DecodeConfigz([]byte(`{"kubeletconfig":{"maxPods":250,"clusterDNS":["10.96.0.10"],"makeIPTablesUtilChains":true}}`))
	if err != nil || cfg.MaxPods != 250 || cfg.ClusterDNS[0] != "10.96.0.10" {
		t.Fatalf("cfg %+v err %v", cfg, err)
	}
	if _, err := DecodeConfigz([]byte(`{"other":{}}`)); err == nil {
		t.Error("want an error without the kubeletconfig wrapper")
	}
}

func TestKubeletConfigWithFakeIsUnavailable(t *testing.T) {
	_, err := KubeletConfig(context.Background(), fake.NewClientset(), "n1")
	if !errors.Is(err, ErrNoRESTClient) || !Unavailable(err) {
		t.Fatalf("err = %v", err)
	}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "nodes/proxy"}, "n1", errors.New("rbac"))
	if !Unavailable(forbidden) || !Forbidden(forbidden) {
		t.Error("forbidden must count as unavailable")
	}
}

func TestParseControllerManagerArgs(t *testing.T) {
	n, err := ParseControllerManagerArgs([]string{"kube-controller-manager", "--allocate-node-cidrs=true", "--cluster-cidr=10.244.0.0/16,fd00:10:244::/56", "--node-cidr-mask-size-ipv4=23"})
	if err != nil || len(n.ClusterCIDRs) != 2 || n.NodeMaskV4 != 23 || n.NodeMaskV6 != DefaultNodeMaskV6 {
		t.Fatalf("%+v %v", n, err)
	}
	if _, err := ParseControllerManagerArgs([]string{"--cluster-cidr=10.244.0.0/99"}); err == nil {
		t.Error("want an error for a bad CIDR")
	}
}

func TestParseKubeadmConfig(t *testing.T) {
	v1beta3 := "apiVersion: kubeadm.k8s.io/v1beta3\nnetworking:\n  podSubnet: 192.168.0.0/16\ncontrollerManager:\n  extraArgs:\n    node-cidr-mask-size: \"23\"\n"
	n, err := ParseKubeadmConfig(v1beta3)
	if err != nil || n.ClusterCIDRs[0].String() != "192.168.0.0/16" || n.NodeMaskV4 != 23 {
		t.Fatalf("v1beta3: %+v %v", n, err)
	}
	v1beta4 := "apiVersion: kubeadm.k8s.io/v1beta4\nnetworking:\n  podSubnet: 10.244.0.0/16\ncontrollerManager:\n  extraArgs:\n  - name: node-cidr-mask-size-ipv4\n    value: \"25\"\n"
	n, err = ParseKubeadmConfig(v1beta4)
	if err != nil || n.NodeMaskV4 != 25 {
		t.Fatalf("v1beta4: %+v %v", n, err)
	}
}

func TestDiscoverClusterNetworkFallsBackToKubeadm(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubeadm-config"},
		Data: map[string]string{"ClusterConfiguration": "networking:\n  podSubnet: 10.244.0.0/16\n"}}
	n := DiscoverClusterNetwork(context.Background(), NewSnapshot(fake.NewClientset(cm), ""))
	if len(n.ClusterCIDRs) != 1 || n.Source == "" || len(n.Notes) == 0 {
		t.Fatalf("%+v", n)
	}
}

func TestWorkloadResolver(t *testing.T) {
	yes := true
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-7c9f8-abcde", Labels: map[string]string{"pod-template-hash": "7c9f8"},
		OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-7c9f8", Controller: &yes}}}}
	denied := NewWorkloadResolverWith(func(context.Context, string, string, string) (*metav1.OwnerReference, error) {
		return nil, errors.New("forbidden")
	})
	if w := denied.Resolve(context.Background(), pod); w.Kind != "Deployment" || w.Name != "web" || !w.Inferred {
		t.Errorf("name convention fallback: %+v", w)
	}
	cron := NewWorkloadResolverWith(func(_ context.Context, kind, _, _ string) (*metav1.OwnerReference, error) {
		return &metav1.OwnerReference{Kind: "CronJob", Name: "backup"}, nil
	})
	job := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "backup-29000-x", OwnerReferences: []metav1.OwnerReference{{Kind: "Job", Name: "backup-29000", Controller: &yes}}}}
	if w := cron.Resolve(context.Background(), job); w.String() != "CronJob ns/backup" {
		t.Errorf("job → cronjob: %v", w)
	}
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "debug"}}
	if w := cron.Resolve(context.Background(), bare); w.String() != "Pod ns/debug" {
		t.Errorf("bare pod: %v", w)
	}
}

// Named DaemonSets and Services come from the run's one list of each, not
// one request per name; a name that is not there is NotFound, as a GET says.
func TestNamedObjectsFromTheRunsLists(t *testing.T) {
	ds := func(ns, name string) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	cs := fake.NewClientset(ds("kube-system", "kube-proxy"), ds("kube-system", "node-local-dns"), ds("calico-system", "calico-node"),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "kube-dns"}})
	s := NewSnapshot(cs, "")
	ctx := context.Background()
	for _, n := range [][2]string{{"kube-system", "kube-proxy"}, {"kube-system", "node-local-dns"}, {"calico-system", "calico-node"}} {
		if got, err := s.DaemonSet(ctx, n[0], n[1]); err != nil || got.Namespace != n[0] || got.Name != n[1] {
			t.Errorf("DaemonSet %s/%s: %v %v", n[0], n[1], got, err)
		}
	}
	if _, err := s.DaemonSet(ctx, "kube-flannel", "kube-flannel-ds"); !apierrors.IsNotFound(err) {
		t.Errorf("a DaemonSet that is not there: %v", err)
	}
	if got, err := s.Service(ctx, "kube-system", "kube-dns"); err != nil || got.Namespace != "kube-system" {
		t.Errorf("Service kube-system/kube-dns: %v %v", got, err)
	}
	if _, err := s.Service(ctx, "kube-system", "nope"); !apierrors.IsNotFound(err) {
		t.Errorf("a Service that is not there: %v", err)
	}
	var lists, gets int
	for _, a := range cs.Actions() {
		switch a.GetVerb() {
		case "list":
			lists++
		case "get":
			gets++
		}
	}
	if lists != 2 || gets != 0 {
		t.Errorf("%d lists and %d gets, want 2 lists (DaemonSets, Services) and no get: %v", lists, gets, cs.Actions())
	}
}
