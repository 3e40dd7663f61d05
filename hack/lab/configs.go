package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

func apiServerURL() string { return "https://" + nodes[0].IP.String() + ":6443" }

// writeKubeconfig writes a kubeconfig with the client certificate of pki/<cert>
// embedded, so the file works wherever it is copied.
func (l *lab) writeKubeconfig(path, cert, user string) error {
	read := func(f string) (string, error) {
		b, err := os.ReadFile(l.p.PKI(f))
		return base64.StdEncoding.EncodeToString(b), err
	}
	ca, err := read("ca.crt")
	if err != nil {
		return err
	}
	crt, err := read(cert + ".crt")
	if err != nil {
		return err
	}
	key, err := read(cert + ".key")
	if err != nil {
		return err
	}
	cfg := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"clusters":        []any{map[string]any{"name": clusterName, "cluster": map[string]any{"server": apiServerURL(), "certificate-authority-data": ca}}},
		"users":           []any{map[string]any{"name": user, "user": map[string]any{"client-certificate-data": crt, "client-key-data": key}}},
		"contexts":        []any{map[string]any{"name": clusterName, "context": map[string]any{"cluster": clusterName, "user": user}}},
		"current-context": clusterName,
	}
	return writeYAML(path, cfg, 0o600)
}

func writeYAML(path string, v any, mode os.FileMode) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, mode)
}

// kubeletConfig is the KubeletConfiguration of one node; overrides (from
// faults) replace top-level fields.
func (l *lab) kubeletConfig(n node, overrides map[string]any) map[string]any {
	cfg := map[string]any{
		"apiVersion":         "kubelet.config.k8s.io/v1beta1",
		"kind":               "KubeletConfiguration",
		"address":            n.IP.String(),
		"port":               10250,
		"readOnlyPort":       0,
		"healthzBindAddress": "127.0.0.1",
		"healthzPort":        10248,
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": l.p.PKI("ca.crt")},
		},
		"authorization":                 map[string]any{"mode": "Webhook"},
		"tlsCertFile":                   l.p.PKI("kubelet-serving-" + n.Name + ".crt"),
		"tlsPrivateKeyFile":             l.p.PKI("kubelet-serving-" + n.Name + ".key"),
		"cgroupDriver":                  "cgroupfs",
		"cgroupRoot":                    "/" + n.Name,
		"failCgroupV1":                  false,
		"failSwapOn":                    false,
		"oomScoreAdj":                   0,
		"clusterDNS":                    []string{kubeDNSIP.String()},
		"clusterDomain":                 "cluster.local",
		"resolvConf":                    filepath.Join(l.p.Lab, "resolv.conf"),
		"containerRuntimeEndpoint":      "unix://" + l.p.Socket(n.Name),
		"makeIPTablesUtilChains":        true,
		"maxPods":                       110,
		"podLogsDir":                    l.p.Node(n.Name, "pod-logs"),
		"serializeImagePulls":           false,
		"imageGCHighThresholdPercent":   100,
		"imageGCLowThresholdPercent":    99,
		"evictionHard":                  map[string]string{"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
		"hairpinMode":                   "hairpin-veth",
		"enforceNodeAllocatable":        []string{"pods"},
		"registerNode":                  true,
		"syncFrequency":                 "10s",
		"nodeStatusUpdateFrequency":     "5s",
		"runtimeRequestTimeout":         "2m",
		"shutdownGracePeriod":           "0s",
		"localStorageCapacityIsolation": true,
		"protectKernelDefaults":         false,
	}
	for k, v := range overrides {
		cfg[k] = v
	}
	return cfg
}

func (l *lab) kubeProxyConfig(n node) map[string]any {
	return map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"clientConnection":   map[string]any{"kubeconfig": filepath.Join(l.p.Lab, "kube-proxy.kubeconfig")},
		"hostnameOverride":   n.Name,
		"bindAddress":        n.IP.String(),
		"mode":               "iptables",
		"clusterCIDR":        podCIDR.String(),
		"oomScoreAdj":        0,
		"conntrack":          map[string]any{"maxPerCore": 0, "min": 0},
		"nodePortAddresses":  []string{nodeNet.String()},
		"metricsBindAddress": "127.0.0.1:10249",
		"healthzBindAddress": n.IP.String() + ":10256",
	}
}

// containerdConfig is containerd's own config for one node: its own root,
// state and socket, CRI with the local pause image and the profile's CNI.
func (l *lab) containerdConfig(n node) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, l.p.Node(n.Name, "containerd"), filepath.Join(l.p.Run, n.Name, "state"), l.p.Socket(n.Name),
		l.p.Node(n.Name, "opt"), pauseImage, l.cniBinDir(), l.p.Node(n.Name, "cni"))
}

// cniConfig is the bridge CNI chain of one node for its allocated pod CIDR:
// no masquerade (the node's own NAT rule does that, as in seed 003), hairpin on.
func (l *lab) cniConfig(n node, cidr netip.Prefix) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "netsleuth-lab",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": cniBridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": cidr.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": l.p.Node(n.Name, "cni-ipam"),
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}
