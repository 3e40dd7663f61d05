package policy

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/netsleuth/netsleuth/model"
)

// Explain returns the verdict in sentences: one per direction.
func (e *Engine) Explain(v Verdict) []string {
	return []string{
		e.explainDirection(v, "egress", v.From, v.Egress),
		e.explainDirection(v, "ingress", v.To, v.Ingress),
	}
}

func (e *Engine) explainDirection(v Verdict, dir, pod string, d Direction) string {
	switch {
	case d.Exempt != "":
		return fmt.Sprintf("%s: %s.", dir, d.Exempt)
	case !d.Isolated:
		return fmt.Sprintf("%s: no NetworkPolicy selects %s for %s, so it is not isolated and all %s traffic is allowed.", dir, pod, dir, dir)
	case len(d.Admitted) > 0:
		refs := make([]string, len(d.Admitted))
		for i, r := range d.Admitted {
			refs[i] = e.describeRule(r, dir == "ingress")
		}
		return fmt.Sprintf("%s: %s is isolated by %s; allowed by %s.", dir, pod, strings.Join(d.Policies, ", "), strings.Join(refs, "; "))
	}
	peer := v.To
	if dir == "ingress" {
		peer = v.From
	}
	return fmt.Sprintf("%s: %s is isolated by %s and no rule of %s admits %s on %s.",
		dir, pod, strings.Join(d.Policies, ", "), pluralIt(len(d.Policies)), peer, v.Port)
}

func pluralIt(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// describeRule renders a rule reference with the peer that matched.
func (e *Engine) describeRule(r RuleRef, ingress bool) string {
	dir := "egress"
	if ingress {
		dir = "ingress"
	}
	if r.Peer < 0 {
		return fmt.Sprintf("%s %s[%d] (any peer)", r.Policy, dir, r.Rule)
	}
	for i := range e.policies {
		c := &e.policies[i]
		if c.name() != r.Policy {
			continue
		}
		rules := c.outRules
		if ingress {
			rules = c.inRules
		}
		return fmt.Sprintf("%s %s[%d] peer %s", r.Policy, dir, r.Rule, describePeer(rules[r.Rule].peers[r.Peer].spec))
	}
	return r.String()
}

func describePeer(p networkingv1.NetworkPolicyPeer) string {
	var parts []string
	if p.IPBlock != nil {
		s := "ipBlock " + p.IPBlock.CIDR
		if len(p.IPBlock.Except) > 0 {
			s += " except " + strings.Join(p.IPBlock.Except, ",")
		}
		return s
	}
	if p.NamespaceSelector != nil {
		parts = append(parts, "namespaceSelector {"+metav1.FormatLabelSelector(p.NamespaceSelector)+"}")
	}
	if p.PodSelector != nil {
		parts = append(parts, "podSelector {"+metav1.FormatLabelSelector(p.PodSelector)+"}")
	}
	return strings.Join(parts, " and ")
}

// Finding turns a verdict into the probe's answer: pass when allowed, warn
// when denied, with the policies at fault and fixes that would allow it.
func (e *Engine) Finding(from, to Endpoint, v Verdict) model.Finding {
	subj := &model.Subject{Kind: "Address", Name: to.IP.String()}
	if to.Pod >= 0 {
		subj = &model.Subject{Kind: "Pod", Namespace: e.Pods[to.Pod].Namespace, Name: e.Pods[to.Pod].Name}
	}
	f := model.Finding{
		ID:       "policy.verdict",
		Subject:  subj,
		Evidence: e.Explain(v),
		References: []string{
			"https://kubernetes.io/docs/concepts/services-networking/network-policies/",
		},
	}
	if v.Allowed() {
		f.Status = model.StatusPass
		f.Title = fmt.Sprintf("allowed: %s -> %s on %s", v.From, v.To, v.Port)
		return f
	}
	f.Status = model.StatusWarn
	f.Title = fmt.Sprintf("denied: %s -> %s on %s", v.From, v.To, v.Port)
	var causes []string
	if !v.Egress.Allowed() {
		causes = append(causes, fmt.Sprintf("egress from %s is isolated by %s and no egress rule admits %s on %s",
			v.From, strings.Join(v.Egress.Policies, ", "), v.To, v.Port))
		f.Fixes = append(f.Fixes, e.egressFix(from, to, v.Port))
	}
	if !v.Ingress.Allowed() {
		causes = append(causes, fmt.Sprintf("ingress to %s is isolated by %s and no ingress rule admits %s on %s",
			v.To, strings.Join(v.Ingress.Policies, ", "), v.From, v.Port))
		f.Fixes = append(f.Fixes, e.labelFixes(from, to, v.Port)...)
		f.Fixes = append(f.Fixes, e.ingressFix(from, to, v.Port))
	}
	f.RootCause = "NetworkPolicy denies it: " + strings.Join(causes, "; ") + "."
	return f
}

// labelFixes finds ingress rules that already admit the port and a peer whose
// only condition the source misses is a set of pod labels (the access=true
// pattern), and proposes labelling the source.
func (e *Engine) labelFixes(from, to Endpoint, port Port) []model.Fix {
	if from.Pod < 0 || e.Pods[from.Pod].HostNetwork {
		return nil
	}
	src := &e.Pods[from.Pod]
	seen := map[string]bool{}
	var fixes []model.Fix
	for _, pi := range e.in[to.Pod] {
		c := &e.policies[pi]
		for ri := range c.inRules {
			r := &c.inRules[ri]
			if !e.portMatches(r.ports, to.Pod, port) {
				continue
			}
			for pj := range r.peers {
				p := &r.peers[pj]
				if p.block != nil || p.spec.PodSelector == nil || len(p.spec.PodSelector.MatchExpressions) > 0 || len(p.spec.PodSelector.MatchLabels) == 0 {
					continue
				}
				if !e.namespaceSet(c.ns, p.spec.NamespaceSelector, "").has(from.Pod) {
					continue
				}
				args := labelArgs(p.spec.PodSelector.MatchLabels)
				cmd := fmt.Sprintf("kubectl label pod -n %s %s %s --overwrite", src.Namespace, src.Name, args)
				if seen[cmd] {
					continue
				}
				seen[cmd] = true
				fixes = append(fixes, model.Fix{
					Description: fmt.Sprintf("Give %s the labels that %s ingress[%d] admits (better: set them in the owning Deployment's pod template).", src.Key(), c.name(), ri),
					Commands:    []string{cmd},
				})
			}
		}
	}
	return fixes
}

func labelArgs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, " ")
}

func (e *Engine) ingressFix(from, to Endpoint, port Port) model.Fix {
	dst := &e.Pods[to.Pod]
	np := newPolicy(dst.Namespace, "allow-"+shortName(from, e)+"-to-"+dst.Name, dst.Labels, networkingv1.PolicyTypeIngress)
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
		From:  []networkingv1.NetworkPolicyPeer{e.peerFor(from)},
		Ports: []networkingv1.NetworkPolicyPort{policyPort(port)},
	}}
	return model.Fix{
		Description: fmt.Sprintf("Add a NetworkPolicy in %s that admits %s on %s to pods labelled like %s.", dst.Namespace, e.endpointName(from), port, dst.Key()),
		Manifest:    manifest(np),
	}
}

func (e *Engine) egressFix(from, to Endpoint, port Port) model.Fix {
	src := &e.Pods[from.Pod]
	np := newPolicy(src.Namespace, "allow-"+src.Name+"-to-"+shortName(to, e), src.Labels, networkingv1.PolicyTypeEgress)
	np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{
		To:    []networkingv1.NetworkPolicyPeer{e.peerFor(to)},
		Ports: []networkingv1.NetworkPolicyPort{policyPort(port)},
	}}
	return model.Fix{
		Description: fmt.Sprintf("Add a NetworkPolicy in %s that lets pods labelled like %s send to %s on %s.", src.Namespace, src.Key(), e.endpointName(to), port),
		Manifest:    manifest(np),
	}
}

func shortName(ep Endpoint, e *Engine) string {
	if ep.Pod >= 0 {
		return e.Pods[ep.Pod].Name
	}
	return strings.NewReplacer(".", "-", ":", "-").Replace(ep.IP.String())
}

// peerFor selects ep by its namespace name and pod labels, or by /32 ipBlock.
func (e *Engine) peerFor(ep Endpoint) networkingv1.NetworkPolicyPeer {
	if ep.Pod < 0 || e.Pods[ep.Pod].HostNetwork {
		ip := ep.IP
		if ep.Pod >= 0 && len(e.Pods[ep.Pod].IPs) > 0 {
			ip = e.Pods[ep.Pod].IPs[0]
		}
		return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: fmt.Sprintf("%s/%d", ip, ip.BitLen())}}
	}
	p := &e.Pods[ep.Pod]
	return networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{namespaceNameLabel: p.Namespace}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: p.Labels},
	}
}

func newPolicy(ns, name string, podLabels map[string]string, t networkingv1.PolicyType) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: podLabels},
			PolicyTypes: []networkingv1.PolicyType{t},
		},
	}
}

func policyPort(p Port) networkingv1.NetworkPolicyPort {
	proto := p.Protocol
	port := intstr.FromInt32(p.Port)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port}
}

func manifest(np *networkingv1.NetworkPolicy) string {
	b, err := yaml.Marshal(np)
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(string(b), "  creationTimestamp: null\n", "")
}

var protoDNS = []Port{{53, corev1.ProtocolUDP}, {53, corev1.ProtocolTCP}}
