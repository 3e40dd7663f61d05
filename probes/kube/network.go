package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"sigs.k8s.io/yaml"
)

// ClusterNetwork is what the cluster says about its pod network: the cluster
// CIDRs kube-controller-manager allocates node podCIDRs from, and the mask
// size of each node's block.
type ClusterNetwork struct {
	// Source names where the values were read, empty when nothing was found.
	Source       string
	ClusterCIDRs []netip.Prefix
	// NodeMaskV4 and NodeMaskV6 are the per-node prefix lengths, 0 if unknown.
	NodeMaskV4, NodeMaskV6 int
	// Notes record what could not be read, for evidence.
	Notes []string
}

// NodeMask returns the node mask for p's address family, 0 if unknown.
func (n ClusterNetwork) NodeMask(p netip.Prefix) int {
	if p.Addr().Is4() {
		return n.NodeMaskV4
	}
	return n.NodeMaskV6
}

// The kube-controller-manager defaults for --node-cidr-mask-size-ipv4/-ipv6.
const (
	DefaultNodeMaskV4 = 24
	DefaultNodeMaskV6 = 64
)

// RBACClusterNetwork is what DiscoverClusterNetwork reads.
var RBACClusterNetwork = model.MergePermissions(RBACPods, RBACConfigMap)

// DiscoverClusterNetwork reads the kube-controller-manager static pod's
// flags in kube-system (label component=kube-controller-manager), then the
// kubeadm-config ConfigMap. What it cannot read is recorded in Notes; it
// never fails.
func DiscoverClusterNetwork(ctx context.Context, s *Snapshot) ClusterNetwork {
	var notes []string
	pods, err := s.PodsMatching(ctx, "kube-system", "component=kube-controller-manager")
	if err != nil {
		notes = append(notes, "kube-controller-manager pods not readable: "+err.Error())
	}
	for _, p := range pods {
		for _, ctr := range p.Spec.Containers {
			n, err := ParseControllerManagerArgs(append(append([]string{}, ctr.Command...), ctr.Args...))
			if err != nil {
				notes = append(notes, fmt.Sprintf("pod kube-system/%s: %v", p.Name, err))
				continue
			}
			if len(n.ClusterCIDRs) > 0 {
				n.Source = "kube-controller-manager flags (pod kube-system/" + p.Name + ")"
				n.Notes = notes
				return n
			}
		}
	}
	if len(pods) > 0 {
		notes = append(notes, "kube-controller-manager pod has no --cluster-cidr flag")
	} else if err == nil {
		notes = append(notes, "no kube-controller-manager pod in kube-system (managed control plane or embedded controller manager)")
	}
	cm, err := s.ConfigMap(ctx, "kube-system", "kubeadm-config")
	if err != nil {
		notes = append(notes, "ConfigMap kube-system/kubeadm-config not readable: "+err.Error())
		return ClusterNetwork{Notes: notes}
	}
	n, err := ParseKubeadmConfig(cm.Data["ClusterConfiguration"])
	if err != nil {
		notes = append(notes, "ConfigMap kube-system/kubeadm-config: "+err.Error())
		return ClusterNetwork{Notes: notes}
	}
	if len(n.ClusterCIDRs) > 0 {
		n.Source = "ConfigMap kube-system/kubeadm-config (networking.podSubnet)"
	}
	n.Notes = notes
	return n
}

// ParseControllerManagerArgs extracts --cluster-cidr and the node mask flags
// from a kube-controller-manager command line; missing masks get the
// controller manager's defaults once a cluster CIDR is set.
func ParseControllerManagerArgs(args []string) (ClusterNetwork, error) {
	flags := map[string]string{}
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		flags[k] = v
	}
	return networkFrom(flags["cluster-cidr"], flags)
}

// ParseKubeadmConfig extracts networking.podSubnet and the controller
// manager's node mask extraArgs from a kubeadm ClusterConfiguration
// (v1beta3 map form or v1beta4 list form of extraArgs).
func ParseKubeadmConfig(doc string) (ClusterNetwork, error) {
	var cfg struct {
		Networking struct {
			PodSubnet string `json:"podSubnet"`
		} `json:"networking"`
		ControllerManager struct {
			ExtraArgs json.RawMessage `json:"extraArgs"`
		} `json:"controllerManager"`
	}
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		return ClusterNetwork{}, fmt.Errorf("parsing ClusterConfiguration: %w", err)
	}
	flags := map[string]string{}
	if len(cfg.ControllerManager.ExtraArgs) > 0 {
		if json.Unmarshal(cfg.ControllerManager.ExtraArgs, &flags) != nil {
			var list []struct{ Name, Value string }
			_ = json.Unmarshal(cfg.ControllerManager.ExtraArgs, &list)
			for _, a := range list {
				flags[a.Name] = a.Value
			}
		}
	}
	cidrs := cfg.Networking.PodSubnet
	if v := flags["cluster-cidr"]; v != "" {
		cidrs = v
	}
	return networkFrom(cidrs, flags)
}

func networkFrom(cidrs string, flags map[string]string) (ClusterNetwork, error) {
	var n ClusterNetwork
	for _, s := range strings.Split(cidrs, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return n, fmt.Errorf("cluster CIDR %q: %w", s, err)
		}
		n.ClusterCIDRs = append(n.ClusterCIDRs, p.Masked())
	}
	if len(n.ClusterCIDRs) == 0 {
		return n, nil
	}
	n.NodeMaskV4, n.NodeMaskV6 = DefaultNodeMaskV4, DefaultNodeMaskV6
	if v, ok := flags["node-cidr-mask-size"]; ok {
		m, err := strconv.Atoi(v)
		if err != nil {
			return n, fmt.Errorf("--node-cidr-mask-size=%q: %w", v, err)
		}
		n.NodeMaskV4, n.NodeMaskV6 = m, m
	}
	for flag, dst := range map[string]*int{"node-cidr-mask-size-ipv4": &n.NodeMaskV4, "node-cidr-mask-size-ipv6": &n.NodeMaskV6} {
		if v, ok := flags[flag]; ok {
			m, err := strconv.Atoi(v)
			if err != nil {
				return n, fmt.Errorf("--%s=%q: %w", flag, v, err)
			}
			*dst = m
		}
	}
	return n, nil
}
