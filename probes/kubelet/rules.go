package kubelet

import (
	"fmt"
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
