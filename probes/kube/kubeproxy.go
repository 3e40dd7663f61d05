package kube

import (
	"context"
	"strings"

	"github.com/netsleuth/netsleuth/model"
)

// KubeProxy is what the cluster says about kube-proxy.
type KubeProxy struct {
	Mode   string            // iptables, ipvs, nftables, "" unknown
	Source string            // where Mode came from
	Pods   map[string]string // node → kube-proxy pod name (DaemonSet installs)
}

// RBACKubeProxy is what DiscoverKubeProxy reads.
var RBACKubeProxy = model.MergePermissions(RBACConfigMap, RBACPods)

// DiscoverKubeProxy reads kube-proxy's mode from the kubeadm ConfigMap or
// its pods' flags, and which pod runs on which node. It never fails.
func DiscoverKubeProxy(ctx context.Context, s *Snapshot) KubeProxy {
	p := KubeProxy{Pods: map[string]string{}, Source: "no kube-proxy ConfigMap or pods: assumed iptables, checked in the node's rules"}
	if cm, err := s.ConfigMap(ctx, "kube-system", "kube-proxy"); err == nil {
		if m := ProxyModeFromConfig(cm.Data["config.conf"]); m != "" {
			p.Mode, p.Source = m, "ConfigMap kube-system/kube-proxy"
		}
	}
	pods, err := s.PodsMatching(ctx, "kube-system", "k8s-app=kube-proxy")
	if err != nil {
		return p
	}
	for _, pod := range pods {
		p.Pods[pod.Spec.NodeName] = pod.Name
		for _, ctr := range pod.Spec.Containers {
			for _, a := range append(append([]string{}, ctr.Command...), ctr.Args...) {
				if m, ok := strings.CutPrefix(a, "--proxy-mode="); ok && p.Mode == "" {
					p.Mode, p.Source = m, "pod "+pod.Name+" flags"
				}
			}
		}
	}
	if p.Mode == "" && len(p.Pods) > 0 {
		p.Source = "kube-proxy pods without --proxy-mode and no ConfigMap: assumed iptables"
	}
	return p
}

// ProxyModeFromConfig reads `mode:` from a KubeProxyConfiguration; "" means
// the field is absent, and an empty mode is the default, iptables on Linux.
func ProxyModeFromConfig(conf string) string {
	for _, l := range strings.Split(conf, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "mode:"); ok {
			v = strings.Trim(strings.TrimSpace(v), `"'`)
			if v == "" {
				return "iptables"
			}
			return v
		}
	}
	return ""
}
