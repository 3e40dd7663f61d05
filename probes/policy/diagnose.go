package policy

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// Reach is what real traffic did at L3/L4.
type Reach string

// What the live traffic found.
const (
	// ReachConnected: the TCP handshake completed or the UDP datagram was
	// echoed.
	ReachConnected Reach = "connected"
	// ReachRefused: a TCP RST or an ICMP port unreachable came back: the
	// packet reached the destination, where nothing listens on the port
	// (or an enforcer rejects instead of dropping).
	ReachRefused Reach = "refused"
	// ReachDropped: nothing came back, or an ICMP unreachable or
	// administratively prohibited: the packet did not arrive.
	ReachDropped Reach = "dropped"
	// ReachUnknown: the agent could not tell (UDP silence, agent failure).
	ReachUnknown Reach = "inconclusive"
)

// ClassifyReach maps one TCP or UDP result to what it says about policy.
// UDP silence is inconclusive: a server that does not answer looks the same
// as a drop.
func ClassifyReach(r ops.Result) Reach {
	switch r.Outcome {
	case ops.OK, ops.PartialLoss, ops.Reset: // a reset came from a peer that had accepted
		return ReachConnected
	case ops.Refused:
		if r.Rejected() || !r.Arrived() {
			return ReachDropped // an enforcer's or firewall's REJECT, told by its ICMP
		}
		return ReachRefused
	case ops.Timeout:
		if r.Op.Kind == ops.UDP {
			return ReachUnknown
		}
		return ReachDropped
	case ops.HostUnreach, ops.NetUnreach, ops.AdminProhibit:
		return ReachDropped
	}
	return ReachUnknown
}

// Live is the real traffic sent for one question.
type Live struct {
	// Via names the sender: "stand-in pod ns/name (ip) on node n".
	Via string
	// Result is the last attempt's result.
	Result ops.Result
	// Attempts is how many times the traffic was sent; later attempts
	// only run while the answer contradicts the static verdict, to give
	// the enforcer time to program a new pod.
	Attempts int
	// SameNode: the sender runs on the destination's node.
	SameNode bool
}

// Line renders the live evidence: what was sent, from where, what came back.
func (l Live) Line() string {
	o := l.Result.Op
	what := fmt.Sprintf("TCP connect %s:%d", o.Target, o.Port)
	if o.Kind == ops.UDP {
		what = fmt.Sprintf("UDP echo %s:%d", o.Target, o.Port)
	}
	s := fmt.Sprintf("%s from %s: %s", what, l.Via, l.Result.Outcome)
	if l.Result.Error != "" && l.Result.Outcome != ops.OK {
		s += " (" + l.Result.Error + ")"
	}
	if l.Attempts > 1 {
		s += fmt.Sprintf(", same answer on %d attempts", l.Attempts)
	}
	return s
}

// Comparison is the static verdict next to the live traffic.
type Comparison struct {
	Verdict Verdict
	// Subject is the destination pod.
	Subject *model.Subject
	// Static is the static explanation (Engine.Explain).
	Static []string
	// DstHostNetwork: the destination uses the node's network.
	DstHostNetwork bool
	Live           Live
}

// Agrees reports whether the live traffic is what the static verdict
// predicts; unknown traffic never contradicts it.
func (c Comparison) Agrees() bool {
	r := ClassifyReach(c.Live.Result)
	switch {
	case r == ReachUnknown:
		return true
	case c.Verdict.Allowed():
		return r != ReachDropped
	}
	return r == ReachDropped
}

// Diagnose returns the evidence line the verdict finding gains and, when
// the traffic contradicts the static verdict, the finding that explains the
// contradiction.
func Diagnose(c Comparison) (evidence string, contradiction *model.Finding) {
	r := ClassifyReach(c.Live.Result)
	line := c.Live.Line()
	switch {
	case r == ReachUnknown:
		return "not verified live: " + line + " — inconclusive", nil
	case c.Agrees() && r == ReachRefused:
		return "verified live: " + line + " — the packet arrived (policy allows it at L3/L4) but nothing listens on " + c.Verdict.Port.String(), nil
	case c.Agrees():
		return "verified live: " + line, nil
	case c.Verdict.Allowed():
		return "live traffic contradicts this verdict: " + line + " (see policy.allowed-but-unreachable)", unreachable(c, line)
	case c.DstHostNetwork:
		return "live traffic contradicts this verdict: " + line + " (see policy.host-network-target)", hostNetworkTarget(c, line)
	}
	return "live traffic contradicts this verdict: " + line + " (see policy.not-enforced)", notEnforced(c, r, line)
}

func (c Comparison) evidence(line string) []string {
	verdict := "static verdict: denied"
	if c.Verdict.Allowed() {
		verdict = "static verdict: allowed"
	}
	return append(append([]string{verdict}, c.Static...), "live: "+line)
}

// notEnforced: policy says deny, the traffic arrived.
func notEnforced(c Comparison, r Reach, line string) *model.Finding {
	v := c.Verdict
	f := &model.Finding{
		ID: "policy.not-enforced", Status: model.StatusFail, Subject: c.Subject,
		Title:    fmt.Sprintf("NetworkPolicy is not enforced: %s -> %s on %s got through although policy denies it", v.From, v.To, v.Port),
		Evidence: c.evidence(line),
		RootCause: fmt.Sprintf("The NetworkPolicies deny %s -> %s on %s, yet the traffic reached %s: this cluster's CNI does not enforce NetworkPolicy "+
			"(the plugin has no policy support, its policy agent is not running on these nodes, or policy enforcement is turned off).", v.From, v.To, v.Port, v.To),
		Fixes: notEnforcedFixes(v),
		References: []string{
			"https://kubernetes.io/docs/concepts/services-networking/network-policies/#prerequisites",
			"https://github.com/kubernetes-sigs/kube-network-policies",
		},
	}
	if r == ReachRefused {
		f.Status = model.StatusWarn
		f.RootCause += fmt.Sprintf(" The answer was a reject, not a completed connection: if nothing listens on %s, the packet arrived and policy is not enforced; "+
			"an enforcer configured to REJECT rather than DROP would answer the same way.", v.Port)
	}
	return f
}

func notEnforcedFixes(v Verdict) []model.Fix {
	recheck := "netsleuth check --probe policy --from " + v.From + " --to " + v.To + ":" + portArg(v.Port)
	return []model.Fix{
		{Description: "Install or enable a CNI or policy agent that enforces NetworkPolicy: Calico, Cilium, or kube-network-policies " +
			"(a policy agent for CNIs without policy support, such as flannel or the bridge plugin). Then check that its pods run on every node " +
			"and ask the same question again: the contradiction should be gone.",
			Commands: []string{
				"kubectl get daemonsets -A | grep -Ei 'calico|cilium|kube-network-policies|antrea|kube-router|weave'",
				"kubectl get pods -A -o wide | grep -Ei 'calico-node|cilium|network-policies'",
				recheck,
			}},
	}
}

// hostNetworkTarget: policy denies (at the source's egress), the target is
// hostNetwork and the traffic arrived.
func hostNetworkTarget(c Comparison, line string) *model.Finding {
	v := c.Verdict
	return &model.Finding{
		ID: "policy.host-network-target", Status: model.StatusWarn, Subject: c.Subject,
		Title:    fmt.Sprintf("%s -> %s on %s got through although egress policy denies it: %s uses the host network", v.From, v.To, v.Port, v.To),
		Evidence: c.evidence(line),
		RootCause: fmt.Sprintf("%s runs with hostNetwork: true, so its address is the node's. NetworkPolicies do not select hostNetwork pods, and how egress rules "+
			"treat traffic to node addresses is left to each CNI; this one lets it through. This is not proof that the CNI ignores NetworkPolicy.", v.To),
		Fixes: []model.Fix{{Description: "To control traffic to a hostNetwork pod, allow or deny its node addresses with an ipBlock egress rule, " +
			"or move the workload off the host network so that pod-selecting policies apply; check enforcement with a pod-network target.",
			Commands: []string{"kubectl get nodes -o wide"}}},
		References: []string{"https://kubernetes.io/docs/concepts/services-networking/network-policies/#what-you-can-t-do-with-network-policies-at-least-not-yet"},
	}
}

// unreachable: policy allows, the traffic did not arrive.
func unreachable(c Comparison, line string) *model.Finding {
	v := c.Verdict
	if c.Subject != nil && c.Subject.Kind == "Address" {
		return unreachableAddress(c, line)
	}
	path := "across nodes (overlay or underlay routing between nodes)"
	if c.Live.SameNode {
		path = "on one node (the node's bridge, veths and FORWARD chain)"
	}
	return &model.Finding{
		ID: "policy.allowed-but-unreachable", Status: model.StatusFail, Subject: c.Subject,
		Title:    fmt.Sprintf("NetworkPolicy allows %s -> %s on %s, but the traffic does not arrive", v.From, v.To, v.Port),
		Evidence: c.evidence(line),
		RootCause: fmt.Sprintf("Not a NetworkPolicy problem: the policies admit this traffic, yet it was dropped on the way %s, or %s does not answer on %s. "+
			"(A CNI-specific policy outside networking.k8s.io, such as a CiliumNetworkPolicy or a Calico GlobalNetworkPolicy, would also explain it.)", path, v.To, v.Port),
		Fixes: []model.Fix{{Description: "Hand over to the connectivity probes: pod-to-pod tests the same-node and cross-node paths and names the broken hop; " +
			"services and dns cover a Service or a name in front of the pod. Check that the destination pod listens on the port.",
			Commands: []string{
				"netsleuth check --probe pod-to-pod",
				"netsleuth check --probe services --probe dns",
				kubectlGetPod(v.To),
			}}},
	}
}

// unreachableAddress: policy allows traffic to an address outside the
// pods, and it did not arrive: the source node's forwarding, route or source
// NAT, or something beyond the node; trace and the external probe say which.
func unreachableAddress(c Comparison, line string) *model.Finding {
	v := c.Verdict
	to := v.To + ":" + portArg(v.Port)
	return &model.Finding{
		ID: "policy.allowed-but-unreachable", Status: model.StatusFail, Subject: c.Subject,
		Title:    fmt.Sprintf("NetworkPolicy allows %s -> %s on %s, but the traffic does not arrive", v.From, v.To, v.Port),
		Evidence: c.evidence(line),
		RootCause: fmt.Sprintf("Not a NetworkPolicy problem: the policies admit this traffic to an address outside the pods, yet it did not arrive: "+
			"the source node's forwarding, route or source NAT, or a router, firewall or the target itself beyond the node, stops it (or %s does not answer on %s).", v.To, v.Port),
		Fixes: []model.Fix{{Description: "Hand over to the path diagnoses: trace walks this connection hop by hop from the source, and the external probe compares the source with its node:",
			Commands: []string{
				"netsleuth trace " + v.From + " " + to,
				"netsleuth check --probe external --target " + v.To + ":" + fmt.Sprint(v.Port.Port) + " --from " + v.From,
			}}},
	}
}

// kubectlGetPod shows the pod "ns/name" with its node and IP.
func kubectlGetPod(key string) string {
	ns, name, _ := strings.Cut(key, "/")
	return fmt.Sprintf("kubectl -n %s get pod %s -o wide", ns, name)
}

// portArg renders a port the way --to takes it: "8080" or "53/udp".
func portArg(p Port) string {
	if p.Protocol == corev1.ProtocolTCP {
		return fmt.Sprint(p.Port)
	}
	return fmt.Sprintf("%d/%s", p.Port, strings.ToLower(string(p.Protocol)))
}
