package podcidr

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/fix"
)

// family gathers one IP family's node blocks.
type family struct {
	name     string // IPv4 or IPv6
	clusters []netip.Prefix
	nodes    []netip.Prefix
	inferred bool
	mask     int
	maskSrc  string
}

// Supernet returns the smallest prefix that contains every prefix in ps.
func Supernet(ps []netip.Prefix) netip.Prefix {
	if len(ps) == 0 {
		return netip.Prefix{}
	}
	s := ps[0].Masked()
	for _, p := range ps[1:] {
		for bits := min(s.Bits(), p.Bits()); bits >= 0; bits-- {
			c := netip.PrefixFrom(s.Addr(), bits).Masked()
			if c.Contains(p.Addr()) {
				s = c
				break
			}
		}
	}
	return s
}

func families(in Input) []*family {
	v4 := &family{name: "IPv4"}
	v6 := &family{name: "IPv6"}
	pick := func(a netip.Addr) *family {
		if a.Is4() {
			return v4
		}
		return v6
	}
	for _, c := range in.Network.ClusterCIDRs {
		f := pick(c.Addr())
		f.clusters = append(f.clusters, c)
	}
	for _, n := range in.Nodes {
		for _, s := range n.PodCIDRs {
			if p, err := netip.ParsePrefix(s); err == nil {
				f := pick(p.Addr())
				f.nodes = append(f.nodes, p.Masked())
			}
		}
	}
	var out []*family
	for _, f := range []*family{v4, v6} {
		if len(f.nodes) == 0 && len(f.clusters) == 0 {
			continue
		}
		if len(f.clusters) == 0 {
			f.clusters, f.inferred = []netip.Prefix{Supernet(f.nodes)}, true
		}
		f.mask, f.maskSrc = mostCommonBits(f.nodes), "most common node podCIDR length"
		if !f.inferred && in.Network.NodeMask(f.clusters[0]) > 0 {
			f.mask, f.maskSrc = in.Network.NodeMask(f.clusters[0]), in.Network.Source
		}
		out = append(out, f)
	}
	return out
}

func mostCommonBits(ps []netip.Prefix) int {
	count := map[int]int{}
	best := 0
	for _, p := range ps {
		count[p.Bits()]++
		if count[p.Bits()] > count[best] || count[p.Bits()] == count[best] && p.Bits() > best {
			best = p.Bits()
		}
	}
	return best
}

func clusterFindings(in Input) []model.Finding {
	waiting := 0
	for _, n := range in.Nodes {
		if len(n.PodCIDRs) == 0 {
			waiting++
		}
	}
	var out []model.Finding
	for _, f := range families(in) {
		out = append(out, familyFinding(f, in, waiting))
	}
	return out
}

func familyFinding(f *family, in Input, waiting int) model.Finding {
	var capacity, used int64
	var names []string
	for _, c := range f.clusters {
		names = append(names, c.String())
		capacity += addresses(f.mask - c.Bits())
		for _, n := range f.nodes {
			if c.Contains(n.Addr()) && n.Bits() >= c.Bits() {
				used++
			}
		}
	}
	sort.Strings(names)
	cidr := strings.Join(names, ",")
	src := in.Network.Source
	if f.inferred {
		src = "inferred: smallest supernet of the node podCIDRs"
	}
	ev := []string{
		fmt.Sprintf("%s cluster CIDR %s (%s)", f.name, cidr, src),
		fmt.Sprintf("node mask /%d (%s) → 2^(%d-%d) = %d node blocks; %d allocated, %d free; %d node(s) without a podCIDR",
			f.mask, f.maskSrc, f.mask, f.clusters[0].Bits(), capacity, used, max(capacity-used, 0), waiting),
	}
	ev = append(ev, in.Network.Notes...)
	fd := model.Finding{Subject: &model.Subject{Kind: "Cluster", Name: cidr}, Evidence: ev,
		References: []string{refKCM, refNetwork, refDualStak}}
	if f.inferred {
		fd.ID, fd.Status = IDClusterInferred, model.StatusSkip
		fd.Title = fmt.Sprintf("%s cluster CIDR not visible; node podCIDRs span %s, so at least %d nodes fit (%d allocated)", f.name, cidr, capacity, used)
		return fd
	}
	ratio := in.Table.WarnRatio
	switch {
	case used >= capacity:
		fd.ID, fd.Status = IDClusterFull, model.StatusFail
		fd.Title = fmt.Sprintf("%s cluster CIDR %s is full: %d of %d node blocks allocated", f.name, cidr, used, capacity)
		fd.RootCause = fmt.Sprintf("cluster CIDR %s split into /%d node blocks holds %d nodes and all %d are allocated, so the next node gets no podCIDR (CIDRNotAvailable) and cannot run pods%s.", cidr, f.mask, capacity, used, waitingText(waiting))
	case float64(used) >= ratio*float64(capacity):
		fd.ID, fd.Status = IDClusterHigh, model.StatusWarn
		fd.Title = fmt.Sprintf("%s cluster CIDR %s is %d%% allocated: %d of %d node blocks", f.name, cidr, 100*used/capacity, used, capacity)
		fd.RootCause = fmt.Sprintf("cluster CIDR %s split into /%d node blocks holds %d nodes and %d are allocated, so only %d more nodes can join before new nodes get no podCIDR.", cidr, f.mask, capacity, used, capacity-used)
	default:
		fd.ID, fd.Status = IDCluster, model.StatusPass
		fd.Title = fmt.Sprintf("%s cluster CIDR %s: %d of %d node blocks allocated, room for %d more nodes", f.name, cidr, used, capacity, capacity-used)
		return fd
	}
	fd.Fixes = clusterFixes(f, cidr, in.Table.MaxPodsFor(f.clusters[0].Addr().BitLen()-f.mask-1))
	return fd
}

func waitingText(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d node(s) already have none)", n)
}

func clusterFixes(f *family, cidr string, halfMaxPods int) []model.Fix {
	flag := "--node-cidr-mask-size-ipv4"
	if f.name == "IPv6" {
		flag = "--node-cidr-mask-size-ipv6"
	}
	return []model.Fix{
		{
			Description: "Free blocks held by nodes that no longer exist, and list which node holds which block.",
			Commands: []string{
				"kubectl get nodes -o custom-columns=NAME:.metadata.name,STATUS:.status.conditions[-1].type,PODCIDRS:.spec.podCIDRs",
				"kubectl delete node <departed-node>",
			},
		},
		{
			Description: fmt.Sprintf("Fit twice as many nodes into %s with /%d blocks: set maxPods %d on every kubelet and kube-controller-manager %s=%d; blocks change only as nodes re-register.", cidr, f.mask+1, halfMaxPods, flag, f.mask+1),
			Commands: []string{
				fmt.Sprintf("# on each control-plane node, /etc/kubernetes/manifests/kube-controller-manager.yaml: %s=%d", flag, f.mask+1),
				fmt.Sprintf("# then on each node: %s && systemctl restart kubelet", fix.SetKubeletField("maxPods", fmt.Sprint(halfMaxPods))),
			},
		},
		{
			Description: "The cluster CIDR cannot be grown in place: plan a new cluster with a larger --cluster-cidr, or move pod IPAM to the CNI (Calico IPPools, Cilium multi-pool) which can add ranges.",
			Commands:    []string{"kubectl -n kube-system get pod -l component=kube-controller-manager -o jsonpath='{.items[0].spec.containers[0].command}'"},
		},
	}
}
