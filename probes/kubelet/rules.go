package kubelet

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/netsleuth/netsleuth/assets"
	"github.com/netsleuth/netsleuth/model"
)

// runtimeName returns "containerd" for containerd://1.7.2.
func runtimeName(v string) string {
	name, _, ok := strings.Cut(v, "://")
	if !ok {
		return v
	}
	return name
}

func driverOf(c assets.KubeletCheck, n Node) string {
	if v, ok := lookup(n.Config, c.Path()); ok {
		return show(v)
	}
	return show(c.Default)
}

// cgroupDriver compares a node's cgroupDriver with the other nodes running
// the same container runtime. The runtime's own driver is not visible through
// the API (only status.nodeInfo.containerRuntimeVersion is), so disagreement
// between such nodes is the evidence that one of them mismatches its runtime.
func cgroupDriver(c assets.KubeletCheck, n Node, all []Node) outcome {
	rt := runtimeName(n.Runtime)
	count := map[string]int{}
	peers := 0
	for _, m := range all {
		if m.Config != nil && runtimeName(m.Runtime) == rt {
			count[driverOf(c, m)]++
			peers++
		}
	}
	mine := driverOf(c, n)
	common := mostCommon(count)
	ev := []string{
		fmt.Sprintf("cgroupDriver = %s (configz); runtime %s (status.nodeInfo.containerRuntimeVersion)", mine, orUnknown(n.Runtime)),
		fmt.Sprintf("cgroupDriver among the %d %s node(s): %s", peers, orUnknown(rt), describeCounts(count)),
		"the runtime's own cgroup driver is not exposed by the API; verify on the node: containerd `grep SystemdCgroup /etc/containerd/config.toml`, CRI-O `crio config | grep cgroup_manager`",
	}
	if mine == "cgroupfs" {
		ev = append(ev, "kubeadm recommends the systemd driver on hosts whose init is systemd (seed 004 §2.1); cgroupfs is right only when the runtime uses cgroupfs too")
	}
	o := outcome{Status: model.StatusPass, Actual: mine, Expected: common, Evidence: ev,
		Detail: fmt.Sprintf("same on all %d %s node(s); the runtime's own driver is not visible through the API", peers, orUnknown(rt))}
	if mine != common {
		o.Status = model.Status(c.Severity)
		o.Detail = "cgroupDriver among " + orUnknown(rt) + " nodes: " + describeCounts(count)
	}
	return o
}

// mostCommon returns the most frequent key, preferring systemd, then the
// alphabetically first, on ties.
func mostCommon(count map[string]int) string {
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if count[keys[i]] != count[keys[j]] {
			return count[keys[i]] > count[keys[j]]
		}
		if (keys[i] == "systemd") != (keys[j] == "systemd") {
			return keys[i] == "systemd"
		}
		return keys[i] < keys[j]
	})
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

func describeCounts(count map[string]int) string {
	var parts []string
	for k, v := range count {
		parts = append(parts, fmt.Sprintf("%s on %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown-runtime"
	}
	return s
}

// clusterDNS: every clusterDNS address must be the kube-dns ClusterIP or a
// NodeLocal DNS cache address.
func clusterDNS(v any, dns DNSView) outcome {
	var ips []string
	if list, ok := v.([]any); ok {
		for _, x := range list {
			ips = append(ips, show(x))
		}
	}
	actual := strings.Join(ips, ",")
	if !dns.Known {
		return outcome{Status: model.StatusSkip, Actual: actual, Detail: "the cluster DNS Service could not be read",
			Evidence: []string{"clusterDNS = [" + actual + "] (configz)", dns.Note}}
	}
	valid := append(append([]string{}, dns.ServiceIPs...), dns.NodeLocalIPs...)
	expected := strings.Join(valid, " or ")
	ev := []string{
		"clusterDNS = [" + actual + "] (configz)",
		fmt.Sprintf("kube-dns ClusterIP(s): %s; NodeLocal DNS cache address(es): %s", noneIfEmpty(dns.ServiceIPs), noneIfEmpty(dns.NodeLocalIPs)),
	}
	if len(ips) == 0 {
		return outcome{Status: model.StatusFail, Actual: "(empty)", Expected: expected, Evidence: ev}
	}
	var bad []string
	for _, ip := range ips {
		if !slices.Contains(valid, ip) {
			bad = append(bad, ip)
		}
	}
	if len(bad) > 0 {
		return outcome{Status: model.StatusFail, Actual: strings.Join(bad, ","), Expected: expected, Evidence: ev}
	}
	what := "the kube-dns Service ClusterIP"
	if slices.Contains(dns.NodeLocalIPs, ips[0]) {
		what = "the NodeLocal DNS cache address"
	}
	return outcome{Status: model.StatusPass, Actual: actual, Expected: expected, Detail: what, Evidence: ev}
}

func noneIfEmpty(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	return strings.Join(ss, ", ")
}

// clusterDomain: the kubelet's clusterDomain must be a zone CoreDNS's
// kubernetes plugin serves.
func clusterDomain(v any, set bool, dns DNSView) outcome {
	dom := strings.TrimSuffix(show(v), ".")
	if !set || dom == "" {
		dom = "(unset)"
	}
	ev := []string{"clusterDomain = " + dom + " (configz)", "CoreDNS kubernetes zones: " + noneIfEmpty(dns.Zones)}
	if len(dns.Zones) == 0 {
		return outcome{Status: model.StatusSkip, Actual: dom, Detail: "the CoreDNS Corefile's kubernetes zone is not known", Evidence: append(ev, dns.Note)}
	}
	o := outcome{Status: model.StatusFail, Actual: dom, Expected: strings.Join(dns.Zones, ", "), Evidence: ev}
	if slices.Contains(dns.Zones, dom) {
		o.Status = model.StatusPass
	}
	return o
}

// maxPods cross-checks maxPods against the node's pod CIDR with the podcidr
// probe's sizing table; the podcidr probe explains sizing in depth.
func maxPods(c assets.KubeletCheck, n Node, v any, set bool, t assets.PodCIDRTable) outcome {
	if !set {
		v = c.Default
	}
	mp, _ := v.(float64)
	var p netip.Prefix
	for _, s := range n.PodCIDRs {
		if q, err := netip.ParsePrefix(s); err == nil && (!p.IsValid() || q.Addr().Is4()) {
			p = q.Masked()
		}
	}
	actual := show(v)
	if !p.IsValid() {
		return outcome{Status: model.StatusSkip, Actual: actual, Detail: "the node has no podCIDR (the CNI allocates pod IPs itself)",
			Evidence: []string{"maxPods = " + actual + " (configz)", "spec.podCIDRs is empty"}}
	}
	hostBits := p.Addr().BitLen() - p.Bits()
	usable := int64(1) << min(hostBits, 62)
	if p.Addr().Is4() && usable > 2 {
		usable -= 2
	}
	want := t.HostBitsFor(int(mp))
	detail := fmt.Sprintf("%d usable addresses; the sizing table wants /%d for maxPods %s", usable, p.Addr().BitLen()-want, actual)
	o := outcome{Status: model.StatusPass, Actual: actual, Expected: p.String(), Detail: detail,
		Evidence: []string{"maxPods = " + actual + " (configz)", "pod CIDR " + p.String() + ": " + detail}}
	switch {
	case usable < int64(mp):
		o.Status = model.StatusFail
	case hostBits < want:
		o.Status = model.Status(c.Severity)
	}
	return o
}
