package external

import (
	"net/netip"
	"strings"

	"github.com/netsleuth/netsleuth/probes/agent"
)

// NATVerdict is what nat POSTROUTING does to a packet from a pod to a target.
type NATVerdict struct {
	Masqueraded bool
	// Rule is the rule that decided: the MASQUERADE/SNAT, or the RETURN or
	// ACCEPT that exempted the packet ("" when no rule matched).
	Rule string
	// Chain is the chain Rule is in.
	Chain string
}

// Packet is what the evaluator knows of a packet.
type Packet struct {
	Src, Dst netip.Addr
	OutIface string // from the node's route to Dst
}

// EvalPostrouting walks nat POSTROUTING like the kernel would for p, as far
// as rules can be judged from iptables-save: source, destination, output
// interface, marks (the packet carries none) and address types.
func EvalPostrouting(rules []agent.Rule, p Packet) NATVerdict {
	byChain := map[string][]agent.Rule{}
	for _, r := range rules {
		if r.Table == "nat" {
			byChain[r.Chain] = append(byChain[r.Chain], r)
		}
	}
	v, _ := walk(byChain, "POSTROUTING", p, 0)
	return v
}

// walk evaluates chain; done is false when the chain fell through or returned.
func walk(byChain map[string][]agent.Rule, chain string, p Packet, depth int) (NATVerdict, bool) {
	if depth > 16 {
		return NATVerdict{}, false
	}
	for _, r := range byChain[chain] {
		if !matches(r, p) {
			continue
		}
		switch t := r.Args["-j"]; t {
		case "MASQUERADE", "SNAT":
			return NATVerdict{Masqueraded: true, Rule: r.Line, Chain: chain}, true
		case "RETURN":
			return NATVerdict{Rule: r.Line, Chain: chain}, false
		case "ACCEPT":
			return NATVerdict{Rule: r.Line, Chain: chain}, true
		case "", "MARK", "LOG", "CONNMARK":
			continue
		default:
			if v, done := walk(byChain, t, p, depth+1); done {
				return v, true
			} else if v.Rule != "" && strings.Contains(v.Rule, "RETURN") && isMasqAgent(t) {
				// ip-masq-agent returns for nonMasqueradeCIDRs: remember why.
				return v, true
			}
		}
	}
	return NATVerdict{}, false
}

func isMasqAgent(chain string) bool { return strings.Contains(strings.ToUpper(chain), "MASQ-AGENT") }

// matches judges the conditions of r that iptables-save shows.
func matches(r agent.Rule, p Packet) bool {
	if !cidrMatch(r.Args["-s"], p.Src, true) || !cidrMatch(r.Args["!-s"], p.Src, false) ||
		!cidrMatch(r.Args["-d"], p.Dst, true) || !cidrMatch(r.Args["!-d"], p.Dst, false) {
		return false
	}
	if o := r.Args["-o"]; o != "" && p.OutIface != "" && !ifaceMatch(o, p.OutIface, r.Line) {
		return false
	}
	l := r.Line
	switch {
	case strings.Contains(l, "-m mark --mark") && !strings.Contains(l, "! --mark"):
		return false // our packet carries no mark
	case strings.Contains(l, "--dst-type LOCAL") && !strings.Contains(l, "! --dst-type LOCAL"):
		return false // the target is not a local address
	}
	return true
}

// cidrMatch: with want true, a must be in s; with want false, a must not be.
func cidrMatch(s string, a netip.Addr, want bool) bool {
	if s == "" {
		return true
	}
	for _, part := range strings.Split(s, ",") {
		if !strings.Contains(part, "/") {
			part += "/32"
		}
		pf, err := netip.ParsePrefix(part)
		if err == nil && pf.Contains(a) {
			return want
		}
	}
	return !want
}

func ifaceMatch(pattern, iface, line string) bool {
	neg := strings.Contains(line, "! -o ")
	m := pattern == iface || (strings.HasSuffix(pattern, "+") && strings.HasPrefix(iface, strings.TrimSuffix(pattern, "+")))
	return m != neg
}
