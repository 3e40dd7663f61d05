package kube

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecodeConfigz feeds arbitrary bytes to the configz decoder. A decoded
// configuration encodes to an object that decodes, in its configz wrapper,
// to the same encoding (the kubelet probe reasons on that encoding), and
// errors say they come from decoding configz.
func FuzzDecodeConfigz(f *testing.F) {
	f.Add([]byte(`{"kubeletconfig":{"maxPods":250,"clusterDNS":["10.96.0.10"],"makeIPTablesUtilChains":true}}`))
	f.Add([]byte(`{"kubeletconfig":{"authentication":{"anonymous":{"enabled":false},"webhook":{"enabled":true,"cacheTTL":"2m0s"}},"authorization":{"mode":"Webhook"},"cgroupDriver":"systemd","clusterDomain":"cluster.local","evictionHard":{"memory.available":"100Mi"},"featureGates":{"X":true},"shutdownGracePeriod":"30s"}}`))
	f.Add([]byte(`{"kubeletconfig":null}`))
	f.Add([]byte(`{"kubeletconfig":{"maxPods":"110"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := DecodeConfigz(raw)
		if err != nil {
			if cfg != nil || !strings.HasPrefix(err.Error(), "decoding configz: ") {
				t.Fatalf("config %v with error %q", cfg, err)
			}
			return
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("encoding the decoded configuration: %v", err)
		}
		again, err := DecodeConfigz(append(append([]byte(`{"kubeletconfig":`), b...), '}'))
		if err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		if b2, _ := json.Marshal(again); !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the configuration:\n got %s\nwant %s", b2, b)
		}
	})
}

// FuzzParseKubeadmConfig feeds arbitrary text to the kubeadm
// ClusterConfiguration reader. The cluster CIDRs are masked, there are no
// node masks without a cluster CIDR, and the same network
// written as kube-controller-manager flags parses to the same network.
func FuzzParseKubeadmConfig(f *testing.F) {
	f.Add("apiVersion: kubeadm.k8s.io/v1beta3\nnetworking:\n  podSubnet: 192.168.0.0/16\ncontrollerManager:\n  extraArgs:\n    node-cidr-mask-size: \"23\"\n")
	f.Add("apiVersion: kubeadm.k8s.io/v1beta4\nnetworking:\n  podSubnet: 10.244.0.0/16,fd00:10:244::/56\ncontrollerManager:\n  extraArgs:\n  - name: node-cidr-mask-size-ipv4\n    value: \"25\"\n  - name: cluster-cidr\n    value: 10.245.0.0/16\n")
	f.Add("networking:\n  podSubnet: 10.244.1.7/16\n  serviceSubnet: 10.96.0.0/12\n")
	f.Add("controllerManager:\n  extraArgs: 7\n")
	f.Add("{\"networking\": {\"podSubnet\": \" , \"}}")
	f.Fuzz(func(t *testing.T, doc string) {
		n, err := ParseKubeadmConfig(doc)
		if err != nil {
			return
		}
		checkNetwork(t, n)
	})
}

// FuzzParseControllerManagerArgs feeds a kube-controller-manager command
// line, one argument a line, to the flag reader, with the same promises as
// the kubeadm reader.
func FuzzParseControllerManagerArgs(f *testing.F) {
	f.Add("kube-controller-manager\n--allocate-node-cidrs=true\n--cluster-cidr=10.244.0.0/16,fd00:10:244::/56\n--node-cidr-mask-size-ipv4=23")
	f.Add("--cluster-cidr=10.244.0.0/99")
	f.Add("--node-cidr-mask-size=26\n--cluster-cidr=172.16.0.0/12\n--cluster-cidr=10.0.0.0/8")
	f.Add("--cluster-cidr\n--node-cidr-mask-size-ipv6=x")
	f.Fuzz(func(t *testing.T, cmdline string) {
		n, err := ParseControllerManagerArgs(strings.Split(cmdline, "\n"))
		if err != nil {
			return
		}
		checkNetwork(t, n)
	})
}

func checkNetwork(t *testing.T, n ClusterNetwork) {
	t.Helper()
	var cidrs []string
	for _, p := range n.ClusterCIDRs {
		if !p.IsValid() || p != p.Masked() {
			t.Fatalf("cluster CIDR %v is not a masked prefix", p)
		}
		cidrs = append(cidrs, p.String())
	}
	if len(cidrs) == 0 && (n.NodeMaskV4 != 0 || n.NodeMaskV6 != 0) {
		t.Fatalf("node masks %d/%d without a cluster CIDR", n.NodeMaskV4, n.NodeMaskV6)
	}
	if len(cidrs) == 0 {
		return
	}
	args := []string{"kube-controller-manager", "--cluster-cidr=" + strings.Join(cidrs, ","),
		"--node-cidr-mask-size-ipv4=" + strconv.Itoa(n.NodeMaskV4), "--node-cidr-mask-size-ipv6=" + strconv.Itoa(n.NodeMaskV6)}
	again, err := ParseControllerManagerArgs(args)
	if err != nil || !reflect.DeepEqual(again, n) {
		t.Fatalf("as flags %q it parses to %+v (%v), want %+v", args, again, err, n)
	}
}
