package podcidr

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/netsleuth/netsleuth/assets"
	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/fix"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// Finding IDs of this probe; they are a stable contract for scripts.
const (
	IDNode             = "podcidr.node"
	IDNodeNoCIDR       = "podcidr.node-no-cidr"
	IDNodeCIDRTooSmall = "podcidr.node-cidr-too-small"
	IDNodeCIDRSmall    = "podcidr.node-cidr-undersized"
	IDNodePodsHigh     = "podcidr.node-pods-high"
	IDNodePodsFull     = "podcidr.node-pods-full"
	IDNotAllocated     = "podcidr.not-allocated"
	IDCluster          = "podcidr.cluster-cidr"
	IDClusterHigh      = "podcidr.cluster-cidr-high"
	IDClusterFull      = "podcidr.cluster-cidr-full"
	IDClusterInferred  = "podcidr.cluster-cidr-inferred"
)

const (
	refKCM      = "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/"
	refKubelet  = "https://kubernetes.io/docs/reference/config-api/kubelet-config.v1beta1/"
	refNetwork  = "https://kubernetes.io/docs/concepts/cluster-administration/networking/"
	refLimits   = "https://kubernetes.io/docs/setup/best-practices/cluster-large/"
	refDualStak = "https://kubernetes.io/docs/concepts/services-networking/dual-stack/"
)

// Node is what the probe reads about one node.
type Node struct {
	Name     string
	PodCIDRs []string
	// CapacityPods is status.capacity["pods"], 0 if absent.
	CapacityPods int64
	// ConfigzMaxPods is maxPods from the kubelet's configz, 0 if unreadable.
	ConfigzMaxPods int32
	// ConfigzErr says why configz was not readable, "" if it was.
	ConfigzErr string
	// ActivePods counts pods bound to the node that are not Succeeded/Failed;
	// PodNetworkPods counts those of them that are not hostNetwork.
	ActivePods, PodNetworkPods int
}

// Input is everything Analyze reasons about.
type Input struct {
	Nodes   []Node
	Network kube.ClusterNetwork
	Table   assets.PodCIDRTable
}

// maxPods returns the node's pod limit and where it was read.
func (n Node) maxPods() (int, string) {
	if n.ConfigzMaxPods > 0 {
		return int(n.ConfigzMaxPods), "kubelet configz maxPods"
	}
	return int(n.CapacityPods), "status.capacity.pods"
}

// addresses returns 2^hostBits, saturating at 2^62 for IPv6-sized blocks.
func addresses(hostBits int) int64 {
	if hostBits >= 62 {
		return 1 << 62
	}
	if hostBits < 0 {
		return 0
	}
	return 1 << hostBits
}

// usable is the number of pod addresses in a block: IPv4 loses the network
// and broadcast addresses.
func usable(p netip.Prefix) int64 {
	a := addresses(p.Addr().BitLen() - p.Bits())
	if p.Addr().Is4() && a > 2 {
		return a - 2
	}
	return a
}

// Analyze turns nodes and the cluster network into findings.
func Analyze(in Input) []model.Finding {
	var out []model.Finding
	withCIDR := 0
	for _, n := range in.Nodes {
		if len(n.PodCIDRs) > 0 {
			withCIDR++
		}
	}
	for _, n := range in.Nodes {
		out = append(out, nodeFindings(n, in, withCIDR > 0)...)
	}
	if withCIDR == 0 && len(in.Nodes) > 0 {
		out = append(out, notAllocated(in))
	} else {
		out = append(out, clusterFindings(in)...)
	}
	for i := range out {
		out[i].Probe = ID
	}
	kube.SortFindings(out)
	return out
}

func notAllocated(in Input) model.Finding {
	f := model.Finding{
		ID: IDNotAllocated, Status: model.StatusSkip, Subject: &model.Subject{Kind: "Cluster"},
		Title:      "no node has spec.podCIDR: the CNI allocates pod addresses itself, so per-node capacity cannot be read from node objects",
		Evidence:   []string{fmt.Sprintf("%d node(s), none with spec.podCIDR(s)", len(in.Nodes))},
		References: []string{refNetwork},
	}
	f.Evidence = append(f.Evidence, in.Network.Notes...)
	return f
}

func nodeFindings(n Node, in Input, othersHaveCIDR bool) []model.Finding {
	subj := &model.Subject{Kind: "Node", Name: n.Name}
	maxPods, src := n.maxPods()
	ev := []string{fmt.Sprintf("node %s: podCIDRs=%s, %s=%d, %d active pods (%d on the pod network)",
		n.Name, orNone(strings.Join(n.PodCIDRs, ",")), src, maxPods, n.ActivePods, n.PodNetworkPods)}
	if n.ConfigzErr != "" {
		ev = append(ev, "configz not readable: "+n.ConfigzErr)
	}
	var out []model.Finding
	if len(n.PodCIDRs) == 0 && othersHaveCIDR {
		out = append(out, noCIDR(n, subj, ev, in.Network))
	}
	for _, s := range n.PodCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			ev = append(ev, fmt.Sprintf("podCIDR %q not parseable: %v", s, err))
			continue
		}
		if f, bad := sizeFinding(n, p, maxPods, in.Table, subj, ev); bad {
			out = append(out, f)
		}
	}
	if f, bad := occupancyFinding(n, maxPods, in.Table.WarnRatio, subj, ev); bad {
		out = append(out, f)
	}
	if len(out) == 0 {
		out = append(out, model.Finding{ID: IDNode, Status: model.StatusPass, Subject: subj, Evidence: ev,
			Title: fmt.Sprintf("node %s: pod CIDR %s fits maxPods %d (%d/%d pods)", n.Name, orNone(strings.Join(n.PodCIDRs, ",")), maxPods, n.ActivePods, maxPods)})
	}
	return out
}

func noCIDR(n Node, subj *model.Subject, ev []string, net kube.ClusterNetwork) model.Finding {
	return model.Finding{
		ID: IDNodeNoCIDR, Status: model.StatusFail, Subject: subj, Evidence: append(ev, net.Notes...),
		Title:     fmt.Sprintf("node %s has no pod CIDR while other nodes do", n.Name),
		RootCause: fmt.Sprintf("node %s has no spec.podCIDR although other nodes have one, which means kube-controller-manager could not allocate it a block (CIDRNotAvailable: the cluster CIDR is full) or the node registered before allocation; CNIs that use node podCIDRs (flannel, kindnet, bridge/host-local) cannot give its pods addresses.", n.Name),
		Fixes: []model.Fix{{
			Description: "Look for CIDRNotAvailable events and the cluster CIDR's remaining capacity (see podcidr.cluster-cidr-* findings); free blocks by deleting departed nodes, or re-register the node once space exists.",
			Commands: []string{
				fmt.Sprintf("kubectl get events -A --field-selector involvedObject.name=%s,reason=CIDRNotAvailable", n.Name),
				"kubectl get nodes -o custom-columns=NAME:.metadata.name,PODCIDRS:.spec.podCIDRs",
				"kubectl -n kube-system logs -l component=kube-controller-manager --tail=200 | grep -i cidr",
			},
		}},
		References: []string{refKCM, refNetwork},
	}
}

func sizeFinding(n Node, p netip.Prefix, maxPods int, t assets.PodCIDRTable, subj *model.Subject, ev []string) (model.Finding, bool) {
	if maxPods <= 0 {
		return model.Finding{}, false
	}
	hostBits := p.Addr().BitLen() - p.Bits()
	wantBits := t.HostBitsFor(maxPods)
	if hostBits >= wantBits {
		return model.Finding{}, false
	}
	wantPrefix := p.Addr().BitLen() - wantBits
	fitPods := t.MaxPodsFor(hostBits)
	ev = append(ev, fmt.Sprintf("%s holds %d addresses (%d usable); the sizing table wants /%d (%d addresses) for maxPods %d",
		p, addresses(hostBits), usable(p), wantPrefix, addresses(wantBits), maxPods))
	f := model.Finding{
		ID: IDNodeCIDRSmall, Status: model.StatusWarn, Subject: subj, Evidence: ev,
		Title: fmt.Sprintf("node %s: pod CIDR %s is smaller than /%d recommended for maxPods %d", n.Name, p, wantPrefix, maxPods),
		RootCause: fmt.Sprintf("node %s has pod CIDR %s (%d addresses) but maxPods %d calls for /%d (%d addresses, twice maxPods), so addresses are reused immediately after pods are deleted and little headroom remains.",
			n.Name, p, addresses(hostBits), maxPods, wantPrefix, addresses(wantBits)),
		References: []string{refKCM, refKubelet, refNetwork},
	}
	if usable(p) < int64(maxPods) {
		f.ID, f.Status = IDNodeCIDRTooSmall, model.StatusFail
		f.Title = fmt.Sprintf("node %s: pod CIDR %s cannot hold maxPods %d", n.Name, p, maxPods)
		f.RootCause = fmt.Sprintf("node %s has pod CIDR %s with %d usable addresses but admits maxPods %d pods, so pods beyond the %dth on it fail in the CNI with no free IP address.",
			n.Name, p, usable(p), maxPods, usable(p))
		if fitPods > int(usable(p)) {
			fitPods = int(usable(p))
		}
	}
	flag := "--node-cidr-mask-size-ipv4"
	if p.Addr().Is6() {
		flag = "--node-cidr-mask-size-ipv6"
	}
	fitPods = min(fitPods, 110) // the kubelet's default when it fits
	f.Fixes = append(fix.Kubelet(n.Name, "maxPods", fmt.Sprint(fitPods)),
		model.Fix{
			Description: fmt.Sprintf("Or give nodes larger blocks: set kube-controller-manager %s=%d (a node keeps its block until it re-registers, and each node then uses 2^%d times more of the cluster CIDR).", flag, wantPrefix, p.Bits()-wantPrefix),
			Commands: []string{
				fmt.Sprintf("# on each control-plane node: add %s=%d to /etc/kubernetes/manifests/kube-controller-manager.yaml", flag, wantPrefix),
				fmt.Sprintf("kubectl drain %s --ignore-daemonsets --delete-emptydir-data && kubectl delete node %s   # then restart its kubelet to re-register", n.Name, n.Name),
			},
		})
	return f, true
}

func occupancyFinding(n Node, maxPods int, ratio float64, subj *model.Subject, ev []string) (model.Finding, bool) {
	if maxPods <= 0 || float64(n.ActivePods) < ratio*float64(maxPods) {
		return model.Finding{}, false
	}
	f := model.Finding{
		ID: IDNodePodsHigh, Status: model.StatusWarn, Subject: subj, Evidence: ev,
		Title:      fmt.Sprintf("node %s runs %d of maxPods %d", n.Name, n.ActivePods, maxPods),
		RootCause:  fmt.Sprintf("node %s runs %d pods, %d%% of its maxPods %d, so it will soon stop accepting pods regardless of free CPU and memory.", n.Name, n.ActivePods, 100*n.ActivePods/maxPods, maxPods),
		References: []string{refKubelet, refLimits},
		Fixes: []model.Fix{{
			Description: "Add nodes or spread the load; raise maxPods only if the node's pod CIDR holds twice the new value (see the sizing table).",
			Commands: []string{
				fmt.Sprintf("kubectl get pods -A --field-selector spec.nodeName=%s,status.phase!=Succeeded,status.phase!=Failed -o wide", n.Name),
				fmt.Sprintf("kubectl describe node %s | grep -A6 'Allocated resources'", n.Name),
			},
		}},
	}
	if n.ActivePods >= maxPods {
		f.ID, f.Status = IDNodePodsFull, model.StatusFail
		f.RootCause = fmt.Sprintf("node %s runs %d pods and its maxPods is %d, so the scheduler places no more pods on it (Pending pods report \"Too many pods\").", n.Name, n.ActivePods, maxPods)
	}
	return f, true
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
