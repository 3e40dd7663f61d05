package main

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func portProtocol(p networkingv1.NetworkPolicyPort) string {
	if p.Protocol == nil || *p.Protocol == "" {
		return string(corev1.ProtocolTCP)
	}
	return string(*p.Protocol)
}

func validProtocol(proto string) bool {
	switch corev1.Protocol(proto) {
	case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		return true
	}
	return false
}

func isNamed(p networkingv1.NetworkPolicyPort) bool {
	return p.Port != nil && p.Port.Type == intstr.String
}

func hasNamed(ports []networkingv1.NetworkPolicyPort) bool {
	for _, p := range ports {
		if isNamed(p) {
			return true
		}
	}
	return false
}

// portMatch renders the iptables match for protocol and port range; port 0
// means every port of the protocol.
func portMatch(proto string, port, end int32) string {
	lp := strings.ToLower(proto)
	switch {
	case port == 0:
		return "-p " + lp
	case end > port:
		return fmt.Sprintf("-p %s -m %s --dport %d:%d", lp, lp, port, end)
	default:
		return fmt.Sprintf("-p %s -m %s --dport %d", lp, lp, port)
	}
}

// lookupNamed finds a container port by name and protocol.
func lookupNamed(cps []ContainerPort, name, proto string) (int32, bool) {
	for _, cp := range cps {
		if cp.Name == name && strings.EqualFold(cp.Protocol, proto) {
			return cp.Port, true
		}
	}
	return 0, false
}

// portMatches renders a rule's ports list. An empty list is one match-all ""
// entry. Named ports resolve against cps (unresolvable ones match nothing);
// with skipNamed they are left out for the caller to resolve per pod.
func (r *renderer) portMatches(ports []networkingv1.NetworkPolicyPort, cps []ContainerPort, skipNamed bool, what string) []string {
	if len(ports) == 0 {
		return []string{""}
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range ports {
		proto := portProtocol(p)
		if !validProtocol(proto) {
			r.warnf("%s: protocol %q unsupported, port ignored", what, proto)
			continue
		}
		var m string
		switch {
		case p.Port == nil:
			m = portMatch(proto, 0, 0)
		case isNamed(p):
			if skipNamed {
				continue
			}
			n, ok := lookupNamed(cps, p.Port.StrVal, proto)
			if !ok {
				continue
			}
			m = portMatch(proto, n, 0)
		default:
			end := int32(0)
			if p.EndPort != nil {
				end = *p.EndPort
			}
			m = portMatch(proto, p.Port.IntVal, end)
		}
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// namedMatches resolves only the named entries of ports against cps.
func (r *renderer) namedMatches(ports []networkingv1.NetworkPolicyPort, cps []ContainerPort, what string) []string {
	var named []networkingv1.NetworkPolicyPort
	for _, p := range ports {
		if isNamed(p) {
			named = append(named, p)
		}
	}
	if len(named) == 0 {
		return nil
	}
	return r.portMatches(named, cps, false, what)
}

// RestoreText renders the iptables-restore --noflush input: every chain of rs
// is declared (which creates or flushes it), chains in existing that rs no
// longer uses are flushed and deleted in the same transaction. Built-in
// chains are never named.
func RestoreText(rs Ruleset, existing []string) string {
	var b strings.Builder
	b.WriteString("*filter\n")
	want := map[string]bool{}
	for _, c := range rs.Chains {
		want[c] = true
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	var stale []string
	for _, c := range existing {
		if !want[c] {
			stale = append(stale, c)
			fmt.Fprintf(&b, ":%s - [0:0]\n", c)
		}
	}
	for _, l := range rs.Rules {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	for _, c := range stale {
		fmt.Fprintf(&b, "-X %s\n", c)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// CleanupText flushes and deletes the given chains. Jumps into them from
// built-in chains must already be gone.
func CleanupText(chains []string) string {
	return RestoreText(Ruleset{}, chains)
}
