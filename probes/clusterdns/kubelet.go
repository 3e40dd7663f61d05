package clusterdns

import (
	"fmt"
	"slices"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/fix"
)

// IDKubeletDNS is the one finding about a kubelet's clusterDNS: the kubelet
// probe and the dns probe both ask KubeletDNS, so a wrong clusterDNS is one
// finding with one fix, and the DNS failures it causes cite it.
const IDKubeletDNS = "kubelet.cluster-dns"

const (
	refDebug     = "https://kubernetes.io/docs/tasks/administer-cluster/dns-debugging-resolution/"
	refNodeLocal = "https://kubernetes.io/docs/tasks/administer-cluster/nodelocaldns/"
)

// LocalAddresses are the NodeLocal cache's own addresses: its listen
// addresses that are not the kube-dns ClusterIP (node-cache binds both).
func (t Topology) LocalAddresses() []string {
	var out []string
	for _, a := range t.NodeLocal.Addresses {
		if !slices.Contains(t.ServiceIPs(), a) {
			out = append(out, a)
		}
	}
	return out
}

// Known reports whether the cluster's DNS deployment was found at all.
func (t Topology) Known() bool { return t.Service != nil || t.NodeLocal.Present }

// KubeletDNS judges the clusterDNS a node's kubelet hands to pods (read
// through configz) against the cluster's DNS: it must be the kube-dns
// ClusterIP or a NodeLocal DNS cache address, and with kube-proxy in IPVS
// mode and NodeLocal running, the NodeLocal address.
func KubeletDNS(node string, clusterDNS []string, t Topology) model.Finding {
	f := model.Finding{ID: IDKubeletDNS, Subject: &model.Subject{Kind: "Node", Name: node}}
	f.Evidence = []string{
		fmt.Sprintf("kubelet clusterDNS on %s (configz): [%s]", node, strings.Join(clusterDNS, ",")),
		fmt.Sprintf("kube-dns ClusterIP(s): %s; NodeLocal DNS cache address(es): %s", none(t.ServiceIPs()), none(t.NodeLocal.Addresses)),
	}
	if !t.Known() {
		f.Status, f.Title = model.StatusSkip, fmt.Sprintf("node %s: clusterDNS not checked: the cluster DNS Service could not be read", node)
		f.Evidence = append(f.Evidence, t.Notes...)
		return f.WithKey("")
	}
	valid := append(slices.Clone(t.ServiceIPs()), t.NodeLocal.Addresses...)
	var bad []string
	for _, ip := range clusterDNS {
		if !slices.Contains(valid, ip) {
			bad = append(bad, ip)
		}
	}
	local := t.LocalAddresses()
	switch {
	case len(bad) > 0 || len(clusterDNS) == 0:
		return mismatch(f, node, clusterDNS, bad, valid)
	case t.ProxyMode == "ipvs" && len(local) > 0 && !slices.Contains(local, clusterDNS[0]):
		f.Status = model.StatusWarn
		f.Title = fmt.Sprintf("node %s: kube-proxy is in IPVS mode but kubelet clusterDNS %s is not the NodeLocal address %s", node, strings.Join(clusterDNS, ","), local[0])
		f.RootCause = fmt.Sprintf("With kube-proxy in IPVS mode the NodeLocal DNS cache cannot take over the kube-dns ClusterIP, so pods on %s using clusterDNS %s bypass the cache entirely; in IPVS mode the kubelet's --cluster-dns must be the node-local address %s.",
			node, strings.Join(clusterDNS, ","), local[0])
		f.Fixes = fix.Kubelet(node, "clusterDNS", "["+local[0]+"]")
		f.References = []string{refNodeLocal}
		return f.WithKey("")
	}
	what := "the kube-dns Service ClusterIP"
	if slices.Contains(local, clusterDNS[0]) {
		what = "the NodeLocal DNS cache address"
	}
	f.Status, f.Title = model.StatusPass, fmt.Sprintf("node %s: kubelet clusterDNS %s is %s", node, strings.Join(clusterDNS, ","), what)
	return f.WithKey("")
}

func mismatch(f model.Finding, node string, clusterDNS, bad, valid []string) model.Finding {
	shown := strings.Join(bad, ",")
	if len(clusterDNS) == 0 {
		shown = "(empty)"
	}
	want := "<kube-dns ClusterIP>"
	if len(valid) > 0 {
		want = valid[0]
	}
	f.Status = model.StatusFail
	f.Title = fmt.Sprintf("node %s: kubelet clusterDNS %s matches no DNS service", node, shown)
	f.RootCause = fmt.Sprintf("The kubelet on %s gives ClusterFirst pods nameserver %s, which is neither the kube-dns Service ClusterIP nor a NodeLocal DNS cache address (%s), so every name lookup from pods on %s times out.",
		node, shown, none(valid), node)
	f.Fixes = append(fix.Kubelet(node, "clusterDNS", "["+want+"]"),
		model.Fix{Description: fmt.Sprintf("Then recreate the pods on %s so their resolv.conf gets nameserver %s (roll their Deployments, DaemonSets and StatefulSets):", node, want),
			Commands: []string{fmt.Sprintf("kubectl get pods -A -o wide --field-selector spec.nodeName=%s", node)}})
	f.References = []string{refDebug, refNodeLocal}
	return f.WithKey("")
}

func none(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	return strings.Join(ss, ", ")
}
