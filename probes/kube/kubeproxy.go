package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/netsleuth/netsleuth/model"
)

const (
	// KubeProxyLabel selects kube-proxy's pods in kube-system (kubeadm's
	// DaemonSet and most distributions').
	KubeProxyLabel = "k8s-app=kube-proxy"
	// KubeProxyMetricsPort serves kube-proxy's /proxyMode.
	KubeProxyMetricsPort = 10249
)

// KubeProxy is what the cluster says about kube-proxy. Callers share it:
// they read it and do not change it.
type KubeProxy struct {
	Mode   string            // iptables, ipvs, nftables, "" unknown
	Source string            // where Mode came from, or why it is unknown
	Pods   map[string]string // node → kube-proxy pod name (DaemonSet installs)
	Notes  []string          // what could not be read on the way
}

// RBACKubeProxy is what DiscoverKubeProxy reads: kube-proxy's ConfigMap and
// pods, the nodes, and /proxyMode through the node proxy.
var RBACKubeProxy = model.MergePermissions(RBACConfigMap, RBACPods, RBACNodes, RBACConfigz)

// DiscoverKubeProxy reads kube-proxy's mode from the kubeadm ConfigMap, its
// pods' --proxy-mode flag, or its /proxyMode on the first Ready node through
// the node proxy (where kube-proxy's metrics listen beyond loopback), and
// which pod runs on which node. It reads once per snapshot and never fails.
func DiscoverKubeProxy(ctx context.Context, s *Snapshot) KubeProxy {
	v, err := s.Memo(ctx, "kube-proxy", func(ctx context.Context) (any, error) { return discoverKubeProxy(ctx, s), nil })
	if err != nil { // this caller's ctx ended before the read did
		return KubeProxy{Pods: map[string]string{}, Source: "not read: " + err.Error()}
	}
	return v.(KubeProxy)
}

func discoverKubeProxy(ctx context.Context, s *Snapshot) KubeProxy {
	p := KubeProxy{Pods: map[string]string{}}
	if cm, err := s.ConfigMap(ctx, "kube-system", "kube-proxy"); err == nil {
		if m, ok := ProxyModeFromConfig(cm.Data["config.conf"]); ok {
			p.Mode, p.Source = m, "ConfigMap kube-system/kube-proxy"
			if m == "" {
				p.Mode, p.Source = "iptables", p.Source+" (mode is empty, which means iptables on Linux)"
			}
		}
	}
	if pods, err := s.PodsMatching(ctx, "kube-system", KubeProxyLabel); err == nil {
		for _, pod := range pods {
			p.Pods[pod.Spec.NodeName] = pod.Name
			for _, ctr := range pod.Spec.Containers {
				for _, a := range append(append([]string{}, ctr.Command...), ctr.Args...) {
					if m, ok := strings.CutPrefix(a, "--proxy-mode="); ok && p.Mode == "" && m != "" {
						p.Mode, p.Source = strings.ToLower(m), "flag --proxy-mode of pod kube-system/"+pod.Name
					}
				}
			}
		}
	}
	if p.Mode != "" {
		return p
	}
	if nodes, err := s.Nodes(ctx); err == nil {
		if ready, _ := ReadyNodes(nodes); len(ready) > 0 {
			node := ready[0].Name
			m, err := readProxyMode(ctx, s.Client(), node)
			switch {
			case err == nil && m != "":
				p.Mode, p.Source = m, fmt.Sprintf("kube-proxy /proxyMode on node %s (port %d through the node proxy)", node, KubeProxyMetricsPort)
				return p
			case err != nil:
				p.Notes = append(p.Notes, fmt.Sprintf("kube-proxy /proxyMode on node %s not reachable through the API server: %v", node, err))
			}
		}
	}
	p.Source = "no kube-proxy ConfigMap, no kube-proxy pods with --proxy-mode, /proxyMode not reachable"
	return p
}

// ProxyModeFromConfig reads `mode` from a KubeProxyConfiguration, lower
// case: ok is false when conf is not one, and an empty mode (the default,
// iptables on Linux) is "".
func ProxyModeFromConfig(conf string) (mode string, ok bool) {
	var cfg struct {
		Mode string `json:"mode"`
	}
	if strings.TrimSpace(conf) == "" || yaml.Unmarshal([]byte(conf), &cfg) != nil {
		return "", false
	}
	return strings.ToLower(strings.TrimSpace(cfg.Mode)), true
}

// proxyModeTimeout bounds the /proxyMode read: a firewall that drops the
// API server's dial to the port would otherwise hold every probe that
// waits for kube-proxy's mode.
const proxyModeTimeout = 3 * time.Second

// readProxyMode asks kube-proxy on node for its mode: GET
// /api/v1/nodes/<node>:10249/proxy/proxyMode.
func readProxyMode(ctx context.Context, c kubernetes.Interface, node string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, proxyModeTimeout)
	defer cancel()
	rc := c.CoreV1().RESTClient()
	if r, ok := rc.(*rest.RESTClient); rc == nil || ok && r == nil {
		return "", ErrNoRESTClient
	}
	raw, err := rc.Get().Resource("nodes").Name(fmt.Sprintf("%s:%d", node, KubeProxyMetricsPort)).SubResource("proxy").Suffix("proxyMode").DoRaw(ctx)
	if err != nil {
		return "", err
	}
	return strings.ToLower(strings.TrimSpace(string(raw))), nil
}
