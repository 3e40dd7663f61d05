package dns

import (
	"fmt"
	"sort"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/clusterdns"
	"github.com/netsleuth/netsleuth/probes/dnsquery"
	"github.com/netsleuth/netsleuth/probes/kube"
)

func find(hops []hopVerdict, hop string) []hopVerdict {
	var out []hopVerdict
	for _, v := range hops {
		if v.server.Hop == hop {
			out = append(out, v)
		}
	}
	return out
}

func anyOK(hops []hopVerdict) bool {
	for _, v := range hops {
		if v.ok() {
			return true
		}
	}
	return false
}

// resolutionFinding judges what a pod on the node actually experiences: the
// short name walked through its resolv.conf search path.
func resolutionFinding(in LiveInput, n LiveNode, hops []hopVerdict, roots map[string]model.Finding) []model.Finding {
	s := n.Cluster.Search
	subj := nodeSubject(n.Node)
	if s == nil || s.Error != "" {
		return []model.Finding{{ID: IDResolution, Status: model.StatusSkip, Subject: subj,
			Title: fmt.Sprintf("node %s: the agent's resolv.conf was not read", n.Node), Evidence: []string{fmt.Sprintf("%+v", s)}}}
	}
	rc := s.ResolvConf
	ev := []string{
		fmt.Sprintf("%s resolv.conf: nameserver %s, search %s, ndots:%d", n.Agent, strings.Join(rc.Nameservers, " "), strings.Join(rc.Search, " "), rc.Ndots),
		searchSteps(s),
		fmt.Sprintf("with ndots:%d an external name with fewer dots costs %d lookups (A and AAAA for %d search domains, then the name itself) before it resolves",
			rc.Ndots, 2*(len(rc.Search)+1), len(rc.Search)),
	}
	if s.ResolvedAs != "" {
		return []model.Finding{{ID: IDResolution, Status: model.StatusPass, Subject: subj, Evidence: ev,
			Title: fmt.Sprintf("node %s: pods resolve %s as %s via nameserver %s (%d queries, %.1f ms)", n.Node, s.Name, strings.TrimSuffix(s.ResolvedAs, "."), s.Server, s.Queries, s.TotalMs)}}
	}
	f := model.Finding{ID: IDResolutionFail, Status: model.StatusFail, Subject: subj, Evidence: ev, References: []string{refDebug, refDNSPods},
		Title: fmt.Sprintf("node %s: pods cannot resolve %s through nameserver %s", n.Node, s.Name, s.Server)}
	var via *hopVerdict
	for i := range hops {
		if hops[i].server.Addr == s.Server {
			via = &hops[i]
		}
	}
	if via == nil {
		if cause, ok := in.Causes.Kubelet[n.Node]; ok {
			return because(f, &cause)
		}
		// The kubelet's clusterDNS was not read: judge the nameserver the pod got.
		cause := clusterdns.KubeletDNS(n.Node, []string{s.Server}, in.Topology)
		if cause.Status.Failing() {
			return because(f, &cause)
		}
	}
	if via != nil {
		if cause, ok := roots[via.server.Addr]; ok {
			return because(f, &cause)
		}
	}
	what := "nameserver " + s.Server
	if via != nil {
		what = fmt.Sprintf("%s (%s), which fails from there (%s)", s.Server, via.server.Hop, strings.Join(via.problems, "; "))
	}
	f.RootCause = fmt.Sprintf("Pods on %s use %s, so name lookups in those pods fail.", n.Node, what)
	f.Fixes = []model.Fix{{Description: "Fix the broken hop named in the other dns findings for this node, then check from a pod.",
		Commands: []string{fmt.Sprintf("kubectl run dnscheck --rm -it --restart=Never --image=busybox --overrides='{\"spec\":{\"nodeName\":\"%s\"}}' -- nslookup %s", n.Node, s.Name)}}}
	return []model.Finding{f}
}

func searchSteps(s *dnsquery.SearchResult) string {
	var parts []string
	for _, st := range s.Steps {
		parts = append(parts, fmt.Sprintf("%s %s → %s (%.1f ms)", strings.TrimSuffix(st.Query, "."), st.Type, st.Rcode, st.Ms))
	}
	return fmt.Sprintf("search walk for %s: %s", s.Name, strings.Join(parts, "; "))
}

// nodeHopFindings judges the NodeLocal DNS cache and the kube-dns Service as
// seen from one node. roots maps each failing hop's address to the finding
// that is its root cause (a configuration finding, or the hop's own).
func nodeHopFindings(in LiveInput, n LiveNode, hops []hopVerdict) (out []model.Finding, roots map[string]model.Finding) {
	roots = map[string]model.Finding{}
	add := func(addr string, fs []model.Finding) {
		for i := range fs {
			if fs[i].Key == "" {
				fs[i] = fs[i].WithKey(addr)
			}
		}
		if fs[0].Status.Failing() {
			roots[addr] = fs[0]
		}
		out = append(out, fs...)
	}
	pods := find(hops, HopCoreDNSPod)
	kd := find(hops, HopKubeDNS)
	for _, v := range find(hops, HopNodeLocal) {
		f := nodeLocalLive(n.Node, v, anyOK(kd))
		if cause, ok := in.Causes.NodeLocal[n.Node]; ok && f.Status.Failing() && v.dead {
			add(v.server.Addr, because(f, &cause))
			continue
		}
		add(v.server.Addr, []model.Finding{f})
	}
	for _, v := range kd {
		f := kubeDNSLive(in, n.Node, v, pods)
		if f.Status.Failing() && len(pods) == 0 {
			add(v.server.Addr, because(f, in.Causes.Service))
			continue
		}
		add(v.server.Addr, []model.Finding{f})
	}
	return out, roots
}

func passHop(id, node string, v hopVerdict) model.Finding {
	return model.Finding{ID: id, Status: model.StatusPass, Subject: nodeSubject(node), Evidence: v.timing,
		Title: fmt.Sprintf("node %s: %s %s answers over UDP and TCP", node, v.server.Label, v.server.Addr)}
}

func nodeLocalLive(node string, v hopVerdict, kubeDNSOK bool) model.Finding {
	if v.ok() {
		return passHop(IDLiveNodeLocal, node, v)
	}
	f := model.Finding{ID: IDLiveNodeLocal, Status: model.StatusFail, Subject: nodeSubject(node),
		Evidence: append(v.problems, v.timing...), References: []string{refNodeLocal}}
	if v.dead {
		f.Title = fmt.Sprintf("node %s: pods cannot reach the NodeLocal DNS cache at %s", node, v.server.Addr)
		f.RootCause = fmt.Sprintf("Nothing answers on %s from pods on %s: the node-local-dns pod is not running there or did not bind the link-local address, so pods whose nameserver is %s time out.", v.server.Addr, node, v.server.Addr)
		f.Fixes = []model.Fix{{Description: "Check the node-local-dns pod on the node and its interface with the link-local address.",
			Commands: []string{"kubectl -n kube-system get pods -l " + clusterdns.NodeLocalLabel + " -o wide --field-selector spec.nodeName=" + node,
				"kubectl -n kube-system logs -l " + clusterdns.NodeLocalLabel + " --tail=50", "# on node " + node + ": ip addr show nodelocaldns"}}}
		return f
	}
	f.Title = fmt.Sprintf("node %s: pods reach the NodeLocal DNS cache but it cannot resolve through kube-dns", node)
	f.RootCause = fmt.Sprintf("The NodeLocal DNS cache at %s answers pods on %s but fails their queries (%s)", v.server.Addr, node, strings.Join(v.problems, "; "))
	if kubeDNSOK {
		f.RootCause += " while kube-dns answers the same names from the same node, so the cache cannot reach kube-dns (its forward target or the path to it is wrong)."
	} else {
		f.RootCause += ", and kube-dns fails too, so the cache has nothing to forward to."
	}
	f.Fixes = []model.Fix{{Description: "Check the cache's forward target for the cluster zone (the kube-dns ClusterIP or a kube-dns-upstream Service) and that it answers.",
		Commands: []string{"kubectl -n kube-system get configmap " + clusterdns.NodeLocalName + " -o jsonpath='{.data.Corefile}' | grep -A3 forward",
			"kubectl -n kube-system logs -l " + clusterdns.NodeLocalLabel + " --tail=50", dig(v, "kubernetes.default.svc.cluster.local")}}}
	return f
}

func kubeDNSLive(in LiveInput, node string, v hopVerdict, pods []hopVerdict) model.Finding {
	if v.ok() {
		return passHop(IDLiveKubeDNS, node, v)
	}
	f := model.Finding{ID: IDLiveKubeDNS, Status: model.StatusFail, Subject: nodeSubject(node),
		Evidence: append(v.problems, v.timing...), References: []string{refDebug}}
	switch {
	case v.udpOK && !v.tcpOK:
		f.Status = model.StatusWarn
		f.Title = fmt.Sprintf("node %s: kube-dns %s answers over UDP but not over TCP", node, v.server.Addr)
		f.RootCause = fmt.Sprintf("tcp/53 to %s fails from %s (%s), so answers too large for UDP (truncated) cannot be retried over TCP and those lookups fail.", v.server.Addr, node, strings.Join(v.problems, "; "))
		f.Fixes = []model.Fix{{Description: "Expose 53/TCP on the kube-dns Service and allow tcp/53 in NetworkPolicies and firewalls.",
			Commands: []string{"kubectl -n kube-system get service kube-dns -o jsonpath='{.spec.ports}'", dig(v, "kubernetes.default.svc.cluster.local") + " +tcp"}}}
	case len(pods) == 0:
		f.Title = fmt.Sprintf("node %s: kube-dns %s does not answer and there is no CoreDNS pod behind it", node, v.server.Addr)
		f.RootCause = fmt.Sprintf("Queries from %s to the kube-dns ClusterIP %s fail (%s) because no CoreDNS pod exists to serve them.", node, v.server.Addr, strings.Join(v.problems, "; "))
		f.Fixes = []model.Fix{{Description: "Find out why the kube-dns Service has no CoreDNS pods (the services finding for kube-system/kube-dns says why):",
			Commands: []string{"kubectl -n kube-system get deployment,pods -l " + clusterdns.DNSLabel, "netsleuth check --probe services -n kube-system"}}}
	case anyOK(pods) && v.dead:
		f.Title = fmt.Sprintf("node %s: CoreDNS pods answer but the kube-dns ClusterIP %s does not", node, v.server.Addr)
		f.RootCause = fmt.Sprintf("From %s the CoreDNS pods answer directly but their Service IP %s does not (%s), so kube-proxy on %s is not translating the ClusterIP to the CoreDNS endpoints.", node, v.server.Addr, strings.Join(v.problems, "; "), node)
		f.Fixes = []model.Fix{{Description: "Check kube-proxy on the node and its rules for the kube-dns Service.",
			Commands: []string{"kubectl -n kube-system get pods -l " + kube.KubeProxyLabel + " -o wide --field-selector spec.nodeName=" + node,
				"# on node " + node + ": sudo iptables-save -t nat | grep -e " + v.server.Addr + " -e KUBE-SVC | head",
				"kubectl -n kube-system get endpointslices -l kubernetes.io/service-name=kube-dns"}}}
	default:
		f.Title = fmt.Sprintf("node %s: kube-dns %s fails", node, v.server.Addr)
		f.RootCause = fmt.Sprintf("Queries from %s to kube-dns %s fail (%s) and no CoreDNS pod answers directly either, so CoreDNS itself or the pod network path to it is broken.", node, v.server.Addr, strings.Join(v.problems, "; "))
		f.Fixes = []model.Fix{{Description: "Check CoreDNS's logs and the pod network from this node to the CoreDNS pods.",
			Commands: []string{"kubectl -n kube-system logs -l " + clusterdns.DNSLabel + " --tail=50", "netsleuth check --probe pod-to-pod", dig(v, "kubernetes.default.svc.cluster.local")}}}
	}
	return f
}

// aggregated reports each CoreDNS pod (or upstream) once, across nodes.
func aggregated(in LiveInput, id, hop string, bad, good map[string][]string) []model.Finding {
	keys := make([]string, 0, len(good))
	for k := range good {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []model.Finding
	for _, k := range keys {
		addr, label, _ := strings.Cut(k, "|")
		subj := &model.Subject{Kind: "DNSServer", Name: addr}
		if len(bad[k]) == 0 {
			out = append(out, model.Finding{ID: id, Status: model.StatusPass, Subject: subj, Evidence: good[k],
				Title: fmt.Sprintf("%s %s answers from every node", label, addr)})
			continue
		}
		out = append(out, brokenServer(id, hop, addr, label, bad[k], good[k]))
	}
	return out
}

func brokenServer(id, hop, addr, label string, bad, good []string) model.Finding {
	f := model.Finding{ID: id, Status: model.StatusFail, Subject: &model.Subject{Kind: "DNSServer", Name: addr},
		Evidence: append(bad, good...), References: []string{refDebug}}
	if hop == HopUpstream {
		f.Title = fmt.Sprintf("CoreDNS upstream %s fails", addr)
		f.RootCause = fmt.Sprintf("The upstream %s that CoreDNS forwards external names to fails (%s), so CoreDNS answers SERVFAIL or times out for every name outside the cluster.", addr, strings.Join(bad, "; "))
		f.References = append(f.References, refCoreDNS)
		f.Fixes = []model.Fix{{Description: "Point CoreDNS's forward at a resolver that answers (the nodes' /etc/resolv.conf or your DNS servers).",
			Commands: []string{"kubectl -n kube-system edit configmap coredns   # forward . <working resolver>", "dig @" + addr + " <external name>"}}}
		return f
	}
	f.Title = fmt.Sprintf("%s %s fails from some nodes", label, addr)
	f.RootCause = fmt.Sprintf("The %s at %s fails (%s)", label, addr, strings.Join(bad, "; "))
	if len(good) > 0 {
		f.RootCause += " while it answers from other nodes, so the pod network path from those nodes to it is broken."
	} else {
		f.RootCause += " from every node, so that CoreDNS replica is overloaded, not serving, or unreachable, and kube-dns sends it a share of all queries."
	}
	f.Fixes = []model.Fix{{Description: "Check the replica and the pod network between the nodes.",
		Commands: []string{"kubectl -n kube-system get pods -l " + clusterdns.DNSLabel + " -o wide", "netsleuth check --probe pod-to-pod", "dig @" + addr + " kubernetes.default.svc.cluster.local"}}}
	return f
}
