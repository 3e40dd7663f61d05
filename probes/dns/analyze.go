package dns

import (
	"fmt"
	"sort"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/clusterdns"
)

// ID is the probe's identifier for --probe.
const ID = "dns"

// Finding IDs of the configuration half; they are a stable contract.
const (
	IDService          = "dns.service"
	IDServiceMissing   = "dns.service-missing"
	IDPodsNotReady     = "dns.pods-not-ready"
	IDUpstream         = "dns.upstream"
	IDNoForward        = "dns.upstream-missing"
	IDCorefileUnread   = "dns.corefile-unreadable"
	IDProxyMode        = "dns.proxy-mode"
	IDNodeLocal        = "dns.nodelocal"
	IDNodeLocalReady   = "dns.nodelocal-ready"
	IDNodeLocalMissing = "dns.nodelocal-not-ready"
	IDPolicyDNSChecked = "dns.policy-dns-egress"
)

const (
	refDebug     = "https://kubernetes.io/docs/tasks/administer-cluster/dns-debugging-resolution/"
	refNodeLocal = "https://kubernetes.io/docs/tasks/administer-cluster/nodelocaldns/"
	refCoreDNS   = "https://coredns.io/plugins/forward/"
	refDNSPods   = "https://kubernetes.io/docs/concepts/services-networking/dns-pod-service/"
	refPolicy    = "https://kubernetes.io/docs/concepts/services-networking/network-policies/"
)

// NodeDNS is one node's kubelet DNS settings, from configz.
type NodeDNS struct {
	Name          string
	ClusterDNS    []string
	ClusterDomain string
	// Labels are the node's labels, to judge the NodeLocal DaemonSet's nodeSelector.
	Labels map[string]string
	// ConfigErr says why configz was not read, "" when it was.
	ConfigErr string
}

// Input is everything Analyze reasons about.
type Input struct {
	Topology clusterdns.Topology
	Nodes    []NodeDNS
	// Policy holds the policy engine's DNS lint findings (policy.blocks-dns);
	// PolicyErr says why policies could not be evaluated.
	Policy    []model.Finding
	PolicyErr string
	// Service holds the shared Service diagnosis of kube-system/kube-dns
	// (servicediag): its endpoints, or the workload scaled to zero.
	Service []model.Finding
}

var systemSubject = func(kind, name string) *model.Subject {
	return &model.Subject{Kind: kind, Namespace: clusterdns.SystemNS, Name: name}
}

// Analyze turns the cluster's DNS configuration into findings, one per hop:
// Service, endpoints, CoreDNS upstream, kube-proxy, NodeLocal DNS cache, each
// kubelet's clusterDNS, and NetworkPolicies that block DNS.
func Analyze(in Input) []model.Finding {
	t := in.Topology
	out := []model.Finding{serviceFinding(t)}
	if t.Service != nil {
		out = append(out, in.Service...)
	}
	if f, ok := podsFinding(t); ok {
		out = append(out, f)
	}
	out = append(out, upstreamFinding(t), proxyModeFinding(t))
	out = append(out, nodeLocalFindings(t, in.Nodes)...)
	out = append(out, clusterDNSFindings(t, in.Nodes)...)
	out = append(out, policyFindings(in)...)
	return out
}

func serviceFinding(t clusterdns.Topology) model.Finding {
	if t.Service == nil {
		return model.Finding{
			ID: IDServiceMissing, Status: model.StatusFail, Subject: systemSubject("Service", clusterdns.ServiceName),
			Title:     "no kube-dns Service in kube-system",
			RootCause: "There is no Service kube-system/kube-dns, so the ClusterIP every kubelet hands to pods as their nameserver leads nowhere and every lookup from ClusterFirst pods times out.",
			Evidence:  append([]string{"GET services/kube-system/kube-dns: not found"}, t.Notes...),
			Fixes: []model.Fix{{
				Description: "Recreate the kube-dns Service in front of the CoreDNS pods at the ClusterIP the kubelets use (their clusterDNS).",
				Commands: []string{
					"kubectl get --raw /api/v1/nodes/<node>/proxy/configz | grep -o '\"clusterDNS\":\\[[^]]*\\]'",
					"kubectl -n kube-system expose deployment coredns --name kube-dns --cluster-ip <clusterDNS> --port 53 --protocol UDP   # add 53/TCP too",
				},
			}},
			References: []string{refDebug},
		}
	}
	return model.Finding{ID: IDService, Status: model.StatusPass, Subject: systemSubject("Service", clusterdns.ServiceName),
		Title:    "Service kube-system/kube-dns has ClusterIP " + strings.Join(t.Service.ClusterIPs, ","),
		Evidence: []string{"spec.clusterIPs: " + strings.Join(t.Service.ClusterIPs, ", ")}}
}

// podsFinding warns when some CoreDNS pods are not Ready while others serve.
func podsFinding(t clusterdns.Topology) (model.Finding, bool) {
	var notReady []string
	for _, p := range t.Pods {
		if !p.Ready {
			notReady = append(notReady, p.Name)
		}
	}
	if len(notReady) == 0 || len(notReady) == len(t.Pods) {
		return model.Finding{}, false
	}
	return model.Finding{ID: IDPodsNotReady, Status: model.StatusWarn, Subject: systemSubject("Deployment", "coredns"),
		Title:      fmt.Sprintf("%d of %d CoreDNS pods are not Ready", len(notReady), len(t.Pods)),
		RootCause:  fmt.Sprintf("CoreDNS pod(s) %s are not Ready, so DNS runs with less capacity and one more failure takes it down.", strings.Join(notReady, ", ")),
		Evidence:   []string{"CoreDNS pods: " + describePods(t.Pods)},
		References: []string{refDebug},
		Fixes: []model.Fix{{Description: "Look at why the pods are not Ready.",
			Commands: []string{"kubectl -n kube-system describe pod " + strings.Join(notReady, " "), "kubectl -n kube-system logs " + notReady[0] + " --tail=50"}}},
	}, true
}

func describePods(ps []clusterdns.Pod) string {
	if len(ps) == 0 {
		return "none"
	}
	var parts []string
	for _, p := range ps {
		st := "Ready"
		if !p.Ready {
			st = "not Ready, " + p.Phase
		}
		parts = append(parts, fmt.Sprintf("%s %s on %s (%s)", p.Name, p.IP, p.Node, st))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func none(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	return strings.Join(ss, ", ")
}

func upstreamFinding(t clusterdns.Topology) model.Finding {
	subj := systemSubject("ConfigMap", "coredns")
	if t.Corefile == nil {
		return model.Finding{ID: IDCorefileUnread, Status: model.StatusSkip, Subject: subj,
			Title: "CoreDNS Corefile not readable; its upstream was not checked", Evidence: append([]string{"no Corefile in ConfigMap kube-system/coredns or kube-dns"}, t.Notes...)}
	}
	for _, fw := range t.Corefile.Forwards() {
		if fw.From == "." {
			ev := []string{fmt.Sprintf("%s: forward %s %s", t.CorefileSource, fw.From, strings.Join(fw.To, " "))}
			if strings.Join(fw.To, "") == "/etc/resolv.conf" {
				ev = append(ev, "CoreDNS pods use dnsPolicy Default, so /etc/resolv.conf is the node's resolver")
			}
			return model.Finding{ID: IDUpstream, Status: model.StatusPass, Subject: subj, Evidence: ev,
				Title: "CoreDNS forwards names outside the cluster to " + strings.Join(fw.To, ", ")}
		}
	}
	return model.Finding{ID: IDNoForward, Status: model.StatusWarn, Subject: subj,
		Title:      "CoreDNS has no upstream for names outside the cluster",
		RootCause:  "The Corefile in " + t.CorefileSource + " has no forward (or proxy) for the root zone \".\", so CoreDNS answers names outside the cluster zones with SERVFAIL or REFUSED and pods cannot resolve external names.",
		Evidence:   []string{fmt.Sprintf("forward directives: %+v", t.Corefile.Forwards())},
		References: []string{refCoreDNS},
		Fixes: []model.Fix{{Description: "Add a forward to the node's resolver (or your upstream DNS) in the .:53 server block; the reload plugin applies it within a minute.",
			Commands: []string{"kubectl -n kube-system edit configmap coredns   # add: forward . /etc/resolv.conf"}}},
	}
}

func proxyModeFinding(t clusterdns.Topology) model.Finding {
	subj := &model.Subject{Kind: "Cluster", Name: "kube-proxy"}
	if t.ProxyMode == "" {
		return model.Finding{ID: IDProxyMode, Status: model.StatusSkip, Subject: subj,
			Title:    "kube-proxy mode not visible (no kube-proxy ConfigMap, no kube-proxy pods, /proxyMode not reachable); assumed iptables",
			Evidence: append([]string{"kube-proxy mode decides whether NodeLocal DNS cache can share the kube-dns ClusterIP"}, t.Notes...)}
	}
	return model.Finding{ID: IDProxyMode, Status: model.StatusPass, Subject: subj,
		Title:    "kube-proxy runs in " + t.ProxyMode + " mode",
		Evidence: []string{"read from " + t.ProxyModeSource}}
}
