package dns

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/clusterdns"
	"github.com/netsleuth/netsleuth/probes/fix"
)

func nodeSubject(name string) *model.Subject { return &model.Subject{Kind: "Node", Name: name} }

func nodeLocalFindings(t clusterdns.Topology, nodes []NodeDNS) []model.Finding {
	nl := t.NodeLocal
	subj := systemSubject("DaemonSet", clusterdns.NodeLocalName)
	if !nl.Present {
		return []model.Finding{{ID: IDNodeLocal, Status: model.StatusSkip, Subject: subj,
			Title:    "NodeLocal DNS cache is not installed (no DaemonSet kube-system/node-local-dns); pods query kube-dns directly",
			Evidence: []string{"GET daemonsets/kube-system/node-local-dns: not found"}}}
	}
	out := []model.Finding{{ID: IDNodeLocal, Status: model.StatusPass, Subject: subj,
		Title:    "NodeLocal DNS cache DaemonSet listens on " + strings.Join(nl.Addresses, ", "),
		Evidence: []string{"listen addresses from " + nl.Source, "pods: " + describePods(nl.Pods)}}}
	local := t.LocalAddresses()
	for _, n := range nodes {
		var pod *clusterdns.Pod
		for i := range nl.Pods {
			if nl.Pods[i].Node == n.Name && (pod == nil || nl.Pods[i].Ready) {
				pod = &nl.Pods[i]
			}
		}
		if pod != nil && pod.Ready {
			out = append(out, model.Finding{ID: IDNodeLocalReady, Status: model.StatusPass, Subject: nodeSubject(n.Name),
				Title:    fmt.Sprintf("node %s: NodeLocal DNS cache pod %s is Ready", n.Name, pod.Name),
				Evidence: []string{describePods([]clusterdns.Pod{*pod})}})
			continue
		}
		out = append(out, nodeLocalMissing(n, pod, local, t))
	}
	return out
}

// excludedBy lists the DaemonSet nodeSelector entries node's labels miss.
func excludedBy(sel, labels map[string]string) []string {
	var out []string
	for k, v := range sel {
		if labels[k] != v {
			out = append(out, k+"="+v)
		}
	}
	slices.Sort(out)
	return out
}

func nodeLocalMissing(n NodeDNS, pod *clusterdns.Pod, local []string, t clusterdns.Topology) model.Finding {
	state := "no node-local-dns pod runs on it"
	if pod != nil {
		state = fmt.Sprintf("its node-local-dns pod %s is not Ready (%s)", pod.Name, pod.Phase)
	}
	excluded := []string(nil)
	if pod == nil && n.Labels != nil {
		excluded = excludedBy(t.NodeLocal.NodeSelector, n.Labels)
	}
	if len(excluded) > 0 {
		state = fmt.Sprintf("the %s DaemonSet's nodeSelector (%s) excludes it, so no cache pod runs there", clusterdns.NodeLocalName, strings.Join(excluded, ", "))
	}
	uses := len(local) > 0 && slices.ContainsFunc(n.ClusterDNS, func(ip string) bool { return slices.Contains(local, ip) })
	f := model.Finding{ID: IDNodeLocalMissing, Status: model.StatusWarn, Subject: nodeSubject(n.Name),
		Title:      fmt.Sprintf("node %s: NodeLocal DNS cache is not Ready", n.Name),
		RootCause:  fmt.Sprintf("On node %s %s, so pods there do not get the cache's lower latency and conntrack relief.", n.Name, state),
		Evidence:   []string{fmt.Sprintf("kubelet clusterDNS on %s: [%s]; NodeLocal address(es): %s", n.Name, strings.Join(n.ClusterDNS, ","), none(local))},
		References: []string{refNodeLocal},
		Fixes: []model.Fix{{Description: "Find out why the DaemonSet's pod is missing or not Ready on the node (taints, resources, bind errors on the link-local address).",
			Commands: []string{
				"kubectl -n kube-system get pods -l " + clusterdns.NodeLocalLabel + " -o wide --field-selector spec.nodeName=" + n.Name,
				"kubectl -n kube-system describe daemonset " + clusterdns.NodeLocalName,
				"kubectl -n kube-system logs -l " + clusterdns.NodeLocalLabel + " --tail=50",
			}}},
	}
	if uses {
		f.Status = model.StatusFail
		f.RootCause = fmt.Sprintf("The kubelet on node %s points pods at the NodeLocal DNS cache (%s) but %s, so nothing answers there and every lookup from pods on %s times out.",
			n.Name, strings.Join(local, ","), state, n.Name)
	}
	if len(excluded) > 0 {
		drop := map[string]any{}
		for _, kv := range excluded {
			k, _, _ := strings.Cut(kv, "=")
			drop[k] = nil
		}
		b, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"nodeSelector": drop}}}})
		f.Fixes = append([]model.Fix{{Description: fmt.Sprintf("Let the cache run on node %s: drop the nodeSelector entries that exclude it (or label the node to match, if the selector is deliberate), then wait for its pod:", n.Name),
			Commands: []string{
				fmt.Sprintf("kubectl -n kube-system patch daemonset %s --type merge -p '%s'", clusterdns.NodeLocalName, b),
				"kubectl -n kube-system rollout status daemonset " + clusterdns.NodeLocalName + " --timeout=2m",
			}}}, f.Fixes...)
	}
	if uses && len(t.ServiceIPs()) > 0 {
		f.Fixes = append(f.Fixes, fix.Kubelet(n.Name, "clusterDNS", "["+t.ServiceIPs()[0]+"]")...)
		f.Fixes[len(f.Fixes)-2].Description = "Or, until the cache runs there, point the kubelet on " + n.Name + " at kube-dns directly: " + f.Fixes[len(f.Fixes)-2].Description
	}
	return f
}

// clusterDNSFindings asks the shared kubelet clusterDNS check about every
// node; the kubelet probe asks the same, so each node gets one finding.
func clusterDNSFindings(t clusterdns.Topology, nodes []NodeDNS) []model.Finding {
	var out []model.Finding
	for _, n := range nodes {
		if n.ConfigErr != "" {
			out = append(out, model.Finding{ID: clusterdns.IDKubeletDNS, Status: model.StatusSkip, Subject: nodeSubject(n.Name),
				Title:    fmt.Sprintf("node %s: kubelet clusterDNS not readable through configz", n.Name),
				Evidence: []string{n.ConfigErr}}.WithKey(""))
			continue
		}
		out = append(out, clusterdns.KubeletDNS(n.Name, n.ClusterDNS, t))
	}
	return out
}

// policyFindings records the policy engine's own verdicts that egress
// NetworkPolicies block DNS, unchanged: the policy probe records the same
// findings, and the report keeps one of each.
func policyFindings(in Input) []model.Finding {
	subj := &model.Subject{Kind: "Cluster", Name: "networkpolicies"}
	if in.PolicyErr != "" {
		return []model.Finding{{ID: IDPolicyDNSChecked, Status: model.StatusSkip, Subject: subj,
			Title: "NetworkPolicies were not checked for DNS egress", Evidence: []string{in.PolicyErr}}}
	}
	if len(in.Policy) == 0 {
		return []model.Finding{{ID: IDPolicyDNSChecked, Status: model.StatusPass, Subject: subj,
			Title:    "no egress NetworkPolicy keeps pods from the cluster DNS on udp/53 and tcp/53",
			Evidence: []string{"every egress-isolated pod is admitted to the CoreDNS pods on udp/53 and tcp/53"}}}
	}
	return in.Policy
}
