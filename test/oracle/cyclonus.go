package oracle

import (
	"github.com/mattfenwick/cyclonus/pkg/matcher"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netsleuth/netsleuth/probes/policy"
)

// Cyclonus is the reference engine: cyclonus's matcher over the same world.
type Cyclonus struct {
	policy *matcher.Policy
	peers  []*matcher.TrafficPeer
	pods   []policy.Pod
}

// NewCyclonus builds the cyclonus matcher. Cyclonus requires policyTypes, so
// they are filled in with the API's defaulting rules on a copy; hostNetwork
// pods are given to it as peers outside the pod network, with their node IP.
func NewCyclonus(w World) *Cyclonus {
	nsLabels := map[string]map[string]string{}
	for _, ns := range w.Namespaces {
		nsLabels[ns.Name] = ns.Labels
	}
	c := &Cyclonus{pods: w.Pods}
	for _, p := range w.Pods {
		tp := &matcher.TrafficPeer{IP: p.IPs[0].String()}
		if !p.HostNetwork {
			tp.Internal = &matcher.InternalPeer{PodLabels: p.Labels, NamespaceLabels: nsLabels[p.Namespace], Namespace: p.Namespace}
		}
		c.peers = append(c.peers, tp)
	}
	nps := make([]*networkingv1.NetworkPolicy, len(w.Policies))
	for i, np := range w.Policies {
		cp := np.DeepCopy()
		if len(cp.Spec.PolicyTypes) == 0 {
			cp.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			if len(cp.Spec.Egress) > 0 {
				cp.Spec.PolicyTypes = append(cp.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
			}
		}
		nps[i] = cp
	}
	c.policy = matcher.BuildNetworkPolicies(false, nps)
	return c
}

// Allowed is cyclonus's verdict for pods[src] -> pods[dst] on q.
func (c *Cyclonus) Allowed(src, dst int, q policy.Port) bool {
	t := &matcher.Traffic{Source: c.peers[src], Destination: c.peers[dst], ResolvedPort: int(q.Port), Protocol: q.Protocol}
	for _, cp := range c.pods[dst].Ports {
		if cp.Port == q.Port && cp.Protocol == q.Protocol {
			t.ResolvedPortName = cp.Name
		}
	}
	return c.policy.IsTrafficAllowed(t).IsAllowed()
}
