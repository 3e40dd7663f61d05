package policy

import (
	"fmt"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
)

// dnsPods returns the cluster DNS pods (k8s-app=kube-dns in kube-system).
func (e *Engine) dnsPods() []int {
	var out []int
	for i := range e.Pods {
		if e.Pods[i].Namespace == "kube-system" && e.Pods[i].Labels["k8s-app"] == "kube-dns" {
			out = append(out, i)
		}
	}
	return out
}

// Lint returns findings about the policies of namespace ns ("" for all).
func (e *Engine) Lint(ns string) []model.Finding {
	var out []model.Finding
	out = append(out, e.lintDNS(ns)...)
	for i := range e.policies {
		c := &e.policies[i]
		if ns != "" && c.ns != ns {
			continue
		}
		out = append(out, e.lintPolicy(c)...)
	}
	for _, p := range e.Problems {
		if ns == "" || strings.HasPrefix(p, ns+"/") {
			out = append(out, model.Finding{ID: "policy.invalid", Status: model.StatusWarn, Title: "unusable selector or CIDR",
				RootCause: p + "; the engine treats it as matching nothing",
				Fixes:     []model.Fix{{Description: "Correct the selector or CIDR in the policy."}}})
		}
	}
	return out
}

// lintDNS finds egress-isolated pods that cannot reach cluster DNS on both
// udp/53 and tcp/53, one finding per namespace.
func (e *Engine) lintDNS(ns string) []model.Finding {
	dns := e.dnsPods()
	byNS := map[string][]int{}
	for i := range e.Pods {
		p := &e.Pods[i]
		if (ns != "" && p.Namespace != ns) || p.HostNetwork || len(e.out[i]) == 0 {
			continue
		}
		if !e.dnsAllowed(i, dns) {
			byNS[p.Namespace] = append(byNS[p.Namespace], i)
		}
	}
	names := make([]string, 0, len(byNS))
	for n := range byNS {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []model.Finding
	for _, n := range names {
		out = append(out, e.dnsFinding(n, byNS[n], dns))
	}
	return out
}

// dnsAllowed: both protocols reach at least one DNS pod, or, when the DNS
// pods are unknown, some egress rule admits port 53 to any peer.
func (e *Engine) dnsAllowed(src int, dns []int) bool {
	for _, q := range protoDNS {
		ok := false
		if len(dns) == 0 {
			ok = e.egressAdmitsPort(src, q)
		}
		for _, d := range dns {
			if e.direction(e.out[src], false, d, Endpoint{Pod: src}, Endpoint{Pod: d}, q).Allowed() {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (e *Engine) egressAdmitsPort(src int, q Port) bool {
	for _, pi := range e.out[src] {
		for _, r := range e.policies[pi].outRules {
			if numeric, _ := e.egressPorts(r.ports, q); numeric {
				return true
			}
		}
	}
	return false
}

// localNames strips the "ns/" prefix from policy keys of namespace ns.
func localNames(ns string, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.TrimPrefix(k, ns+"/")
	}
	return out
}

func (e *Engine) dnsFinding(ns string, pods []int, dns []int) model.Finding {
	policies := map[string]bool{}
	var sample []string
	for _, i := range pods {
		for _, pi := range e.out[i] {
			policies[e.policies[pi].name()] = true
		}
		if len(sample) < 5 {
			sample = append(sample, e.Pods[i].Key())
		}
	}
	names := make([]string, 0, len(policies))
	for n := range policies {
		names = append(names, n)
	}
	sort.Strings(names)
	evidence := []string{fmt.Sprintf("%d egress-isolated pod(s) in %s, e.g. %s", len(pods), ns, strings.Join(sample, ", "))}
	if len(dns) == 0 {
		evidence = append(evidence, "no kube-dns pods were found; checked for any egress rule admitting port 53")
	}
	np := newPolicy(ns, "allow-dns-egress", nil, networkingv1.PolicyTypeEgress)
	np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{
		To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{namespaceNameLabel: "kube-system"}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
		}},
		Ports: []networkingv1.NetworkPolicyPort{policyPort(protoDNS[0]), policyPort(protoDNS[1])},
	}}
	return model.Finding{
		ID: "policy.blocks-dns", Status: model.StatusFail,
		Title:   fmt.Sprintf("egress policies in %s block DNS", ns),
		Subject: &model.Subject{Kind: "NetworkPolicy", Namespace: ns, Name: strings.Join(localNames(ns, names), ",")},
		RootCause: fmt.Sprintf("%s isolate egress of pods in %s and no egress rule admits udp/53 and tcp/53 to the cluster DNS, so name lookups time out.",
			strings.Join(names, ", "), ns),
		Evidence: evidence,
		Fixes: []model.Fix{{
			Description: fmt.Sprintf("Allow DNS egress for every pod in %s (with NodeLocal DNSCache, also allow an ipBlock for its address, 169.254.20.10/32 by default).", ns),
			Manifest:    manifest(np),
		}},
		References: []string{"https://kubernetes.io/docs/concepts/services-networking/network-policies/",
			"https://kubernetes.io/docs/tasks/administer-cluster/dns-debugging-resolution/"},
	}.WithKey("")
}

func (e *Engine) lintPolicy(c *compiledPolicy) []model.Finding {
	var out []model.Finding
	subject := &model.Subject{Kind: "NetworkPolicy", Namespace: c.ns, Name: c.np.Name}
	if c.selected.empty() {
		out = append(out, model.Finding{ID: "policy.selects-nothing", Status: model.StatusWarn, Subject: subject,
			Title: fmt.Sprintf("%s selects no pod", c.name()),
			RootCause: fmt.Sprintf("spec.podSelector {%s} matches no pod in namespace %s, so the policy has no effect.",
				metav1.FormatLabelSelector(&c.np.Spec.PodSelector), c.ns),
			Fixes: []model.Fix{{Description: "Fix the podSelector to match the intended pods' labels, or delete the policy if it is stale.",
				Commands: []string{fmt.Sprintf("kubectl get pods -n %s --show-labels", c.ns)}}}})
	}
	out = append(out, e.lintPeers(c, subject, "ingress", c.inRules)...)
	out = append(out, e.lintPeers(c, subject, "egress", c.outRules)...)
	return out
}

func (e *Engine) lintPeers(c *compiledPolicy, subject *model.Subject, dir string, rules []compiledRule) []model.Finding {
	var out []model.Finding
	for ri := range rules {
		r := &rules[ri]
		for pj := range r.peers {
			p := &r.peers[pj]
			if p.block != nil || !p.pods.empty() {
				continue
			}
			out = append(out, model.Finding{ID: "policy.peer-matches-nothing", Status: model.StatusWarn, Subject: subject,
				Title:     fmt.Sprintf("%s %s[%d] peer %d matches no pod", c.name(), dir, ri, pj),
				RootCause: fmt.Sprintf("the peer %s matches no pod, so this part of the rule admits nothing.", describePeer(p.spec)),
				Fixes: []model.Fix{{Description: "Correct the peer's selectors (namespace labels and pod labels are both required when both are given).",
					Commands: []string{"kubectl get namespaces --show-labels", "kubectl get pods -A --show-labels"}}}})
		}
		out = append(out, e.lintNamedPorts(c, subject, dir, ri, r)...)
	}
	return out
}

// lintNamedPorts: a named port must exist on the pods it is resolved on: the
// selected pods for ingress, the peer pods for egress.
func (e *Engine) lintNamedPorts(c *compiledPolicy, subject *model.Subject, dir string, ri int, r *compiledRule) []model.Finding {
	targets := c.selected
	if dir == "egress" {
		targets = newBitset(len(e.Pods))
		for pj := range r.peers {
			targets.or(r.peers[pj].pods)
		}
		if r.allPeers {
			targets = e.all
		}
	}
	var out []model.Finding
	for _, s := range r.ports {
		if s.name == "" || e.hasNamedPort(targets, s) {
			continue
		}
		out = append(out, model.Finding{ID: "policy.named-port-missing", Status: model.StatusWarn, Subject: subject,
			Title: fmt.Sprintf("%s %s[%d] names port %q that no target pod declares", c.name(), dir, ri, s.name),
			RootCause: fmt.Sprintf("no %s pod declares a %s container port named %q, so this port entry admits nothing.",
				map[string]string{"ingress": "selected", "egress": "destination"}[dir], s.proto, s.name),
			Fixes: []model.Fix{{Description: fmt.Sprintf("Name the container port %q (protocol %s) in the pods' spec, or use the port number in the policy.", s.name, s.proto)}}})
	}
	return out
}

func (e *Engine) hasNamedPort(targets bitset, s portSpec) bool {
	for i := range e.Pods {
		if !targets.has(i) {
			continue
		}
		for _, cp := range e.Pods[i].Ports {
			if cp.Name == s.name && cp.Protocol == s.proto {
				return true
			}
		}
	}
	return false
}
