package dns

import (
	"fmt"
	"slices"
	"strings"

	"github.com/netsleuth/netsleuth/model"
)

// localAddresses are the NodeLocal cache's own addresses: its listen
// addresses that are not the kube-dns ClusterIP (node-cache binds both).
func localAddresses(t Topology) []string {
	var out []string
	for _, a := range t.NodeLocal.Addresses {
		if !slices.Contains(t.ServiceIPs(), a) {
			out = append(out, a)
		}
	}
	return out
}

func nodeSubject(name string) *model.Subject { return &model.Subject{Kind: "Node", Name: name} }

func nodeLocalFindings(t Topology, nodes []NodeDNS) []model.Finding {
	nl := t.NodeLocal
	subj := systemSubject("DaemonSet", NodeLocalName)
	if !nl.Present {
		return []model.Finding{{ID: IDNodeLocal, Status: model.StatusSkip, Subject: subj,
			Title:    "NodeLocal DNS cache is not installed (no DaemonSet kube-system/node-local-dns); pods query kube-dns directly",
			Evidence: []string{"GET daemonsets/kube-system/node-local-dns: not found"}}}
	}
	out := []model.Finding{{ID: IDNodeLocal, Status: model.StatusPass, Subject: subj,
		Title:    "NodeLocal DNS cache DaemonSet listens on " + strings.Join(nl.Addresses, ", "),
		Evidence: []string{"listen addresses from " + nl.Source, "pods: " + describePods(nl.Pods)}}}
	local := localAddresses(t)
	for _, n := range nodes {
		var pod *Pod
		for i := range nl.Pods {
			if nl.Pods[i].Node == n.Name && (pod == nil || nl.Pods[i].Ready) {
				pod = &nl.Pods[i]
			}
		}
		if pod != nil && pod.Ready {
			out = append(out, model.Finding{ID: IDNodeLocalReady, Status: model.StatusPass, Subject: nodeSubject(n.Name),
				Title:    fmt.Sprintf("node %s: NodeLocal DNS cache pod %s is Ready", n.Name, pod.Name),
				Evidence: []string{describePods([]Pod{*pod})}})
			continue
		}
		out = append(out, nodeLocalMissing(n, pod, local))
	}
	return out
}

func nodeLocalMissing(n NodeDNS, pod *Pod, local []string) model.Finding {
	state := "no node-local-dns pod runs on it"
	if pod != nil {
		state = fmt.Sprintf("its node-local-dns pod %s is not Ready (%s)", pod.Name, pod.Phase)
	}
	uses := len(local) > 0 && slices.ContainsFunc(n.ClusterDNS, func(ip string) bool { return slices.Contains(local, ip) })
	f := model.Finding{ID: IDNodeLocalMissing, Status: model.StatusWarn, Subject: nodeSubject(n.Name),
		Title:      fmt.Sprintf("node %s: NodeLocal DNS cache is not Ready", n.Name),
		RootCause:  fmt.Sprintf("On node %s %s, so pods there do not get the cache's lower latency and conntrack relief.", n.Name, state),
		Evidence:   []string{fmt.Sprintf("kubelet clusterDNS on %s: [%s]; NodeLocal address(es): %s", n.Name, strings.Join(n.ClusterDNS, ","), none(local))},
		References: []string{refNodeLocal},
		Fixes: []model.Fix{{Description: "Find out why the DaemonSet's pod is missing or not Ready on the node (taints, resources, bind errors on the link-local address).",
			Commands: []string{
				"kubectl -n kube-system get pods -l " + NodeLocalLabel + " -o wide --field-selector spec.nodeName=" + n.Name,
				"kubectl -n kube-system describe daemonset " + NodeLocalName,
				"kubectl -n kube-system logs -l " + NodeLocalLabel + " --tail=50",
			}}},
	}
	if uses {
		f.Status = model.StatusFail
		f.RootCause = fmt.Sprintf("The kubelet on node %s points pods at the NodeLocal DNS cache (%s) but %s, so nothing answers there and every lookup from pods on %s times out.",
			n.Name, strings.Join(local, ","), state, n.Name)
	}
	return f
}

func clusterDNSFindings(t Topology, nodes []NodeDNS) []model.Finding {
	var out []model.Finding
	local := localAddresses(t)
	for _, n := range nodes {
		subj := nodeSubject(n.Name)
		if n.ConfigErr != "" {
			out = append(out, model.Finding{ID: IDClusterDNS, Status: model.StatusSkip, Subject: subj,
				Title:    fmt.Sprintf("node %s: kubelet clusterDNS not readable through configz", n.Name),
				Evidence: []string{n.ConfigErr}})
			continue
		}
		valid := append(append([]string{}, t.ServiceIPs()...), t.NodeLocal.Addresses...)
		var bad []string
		for _, ip := range n.ClusterDNS {
			if !slices.Contains(valid, ip) {
				bad = append(bad, ip)
			}
		}
		ev := []string{
			fmt.Sprintf("kubelet clusterDNS on %s (configz): [%s]", n.Name, strings.Join(n.ClusterDNS, ",")),
			fmt.Sprintf("kube-dns ClusterIP(s): %s; NodeLocal DNS cache address(es): %s", none(t.ServiceIPs()), none(t.NodeLocal.Addresses)),
		}
		switch {
		case len(bad) > 0 || len(n.ClusterDNS) == 0:
			out = append(out, clusterDNSMismatch(n, bad, valid, ev))
		case t.ProxyMode == "ipvs" && len(local) > 0 && !slices.Contains(local, n.ClusterDNS[0]):
			out = append(out, ipvsBypass(n, local, ev))
		default:
			what := "the kube-dns Service ClusterIP"
			if slices.Contains(local, n.ClusterDNS[0]) {
				what = "the NodeLocal DNS cache address"
			}
			out = append(out, model.Finding{ID: IDClusterDNS, Status: model.StatusPass, Subject: subj, Evidence: ev,
				Title: fmt.Sprintf("node %s: kubelet clusterDNS %s is %s", n.Name, strings.Join(n.ClusterDNS, ","), what)})
		}
	}
	return out
}

func clusterDNSMismatch(n NodeDNS, bad, valid []string, ev []string) model.Finding {
	shown := strings.Join(bad, ",")
	if len(n.ClusterDNS) == 0 {
		shown = "(empty)"
	}
	want := "<kube-dns ClusterIP>"
	if len(valid) > 0 {
		want = valid[0]
	}
	return model.Finding{ID: IDClusterDNSBad, Status: model.StatusFail, Subject: nodeSubject(n.Name), Evidence: ev,
		Title: fmt.Sprintf("kubelet clusterDNS %s on %s matches no DNS service", shown, n.Name),
		RootCause: fmt.Sprintf("The kubelet on %s gives ClusterFirst pods nameserver %s, which is neither the kube-dns Service ClusterIP nor a NodeLocal DNS cache address (%s), so every name lookup from pods on %s times out.",
			n.Name, shown, none(valid), n.Name),
		References: []string{refDebug, refNodeLocal},
		Fixes: []model.Fix{{
			Description: fmt.Sprintf("Set clusterDNS to %s in the kubelet configuration on %s, restart the kubelet, then recreate the node's pods so their resolv.conf is rewritten.", want, n.Name),
			Commands: []string{
				fmt.Sprintf("# on node %s: in /var/lib/kubelet/config.yaml set  clusterDNS: [%s]", n.Name, want),
				"sudo systemctl restart kubelet",
				fmt.Sprintf("kubectl get --raw /api/v1/nodes/%s/proxy/configz | grep -o '\"clusterDNS\":\\[[^]]*\\]'", n.Name),
				fmt.Sprintf("kubectl get pods -A --field-selector spec.nodeName=%s   # roll their workloads to pick up nameserver %s", n.Name, want),
			},
		}},
	}
}

func ipvsBypass(n NodeDNS, local []string, ev []string) model.Finding {
	return model.Finding{ID: IDClusterDNSIPVS, Status: model.StatusWarn, Subject: nodeSubject(n.Name), Evidence: ev,
		Title: fmt.Sprintf("node %s: kube-proxy is in IPVS mode but kubelet clusterDNS %s is not the NodeLocal address %s", n.Name, strings.Join(n.ClusterDNS, ","), local[0]),
		RootCause: fmt.Sprintf("With kube-proxy in IPVS mode the NodeLocal DNS cache cannot take over the kube-dns ClusterIP, so pods on %s using clusterDNS %s bypass the cache entirely; in IPVS mode the kubelet's --cluster-dns must be the node-local address %s.",
			n.Name, strings.Join(n.ClusterDNS, ","), local[0]),
		References: []string{refNodeLocal},
		Fixes: []model.Fix{{
			Description: fmt.Sprintf("Point the kubelet on %s at the NodeLocal DNS cache and restart it.", n.Name),
			Commands: []string{
				fmt.Sprintf("# on node %s: in /var/lib/kubelet/config.yaml set  clusterDNS: [%s]", n.Name, local[0]),
				"sudo systemctl restart kubelet",
			},
		}},
	}
}

// policyFindings reports, under this probe's ID, the policy engine's verdict
// that egress NetworkPolicies block DNS.
func policyFindings(in Input) []model.Finding {
	subj := &model.Subject{Kind: "Cluster", Name: "networkpolicies"}
	if in.PolicyErr != "" {
		return []model.Finding{{ID: IDPolicyBlocksDNS, Status: model.StatusSkip, Subject: subj,
			Title: "NetworkPolicies were not checked for DNS egress", Evidence: []string{in.PolicyErr}}}
	}
	if len(in.Policy) == 0 {
		return []model.Finding{{ID: IDPolicyBlocksDNS, Status: model.StatusPass, Subject: subj,
			Title:    "no egress NetworkPolicy keeps pods from the cluster DNS on udp/53 and tcp/53",
			Evidence: []string{"every egress-isolated pod is admitted to the CoreDNS pods on udp/53 and tcp/53"}}}
	}
	var out []model.Finding
	for _, f := range in.Policy {
		f.ID, f.Probe = IDPolicyBlocksDNS, ID
		f.References = append(f.References, refPolicy, refDebug)
		out = append(out, f)
	}
	return out
}
