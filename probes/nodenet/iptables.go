package nodenet

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/netsleuth/netsleuth/probes/agent"
)

// Packet is what the evaluator knows of the first packet of a new
// connection crossing a node.
type Packet struct {
	Src, Dst          netip.Addr
	InIface, OutIface string // "" when unknown
	Proto             string // tcp, udp, icmp; "" when unknown
	DPort             int
}

// Verdict is where a packet's walk through a chain ended.
type Verdict struct {
	// Target is the deciding target: ACCEPT, DROP, REJECT, MASQUERADE, SNAT,
	// or the built-in chain's policy when no rule decided.
	Target string
	// Rule is the deciding rule's line, "" when the policy decided.
	Rule, Chain string
	// Exempt is the last RETURN or ACCEPT on the way that singled out the
	// packet's addresses (an ip-masq-agent nonMasqueradeCIDRs entry, say).
	Exempt, ExemptChain string
}

// Dropped reports whether the packet is dropped or rejected.
func (v Verdict) Dropped() bool { return v.Target == "DROP" || v.Target == "REJECT" }

// NATed reports whether source NAT rewrites the packet.
func (v Verdict) NATed() bool { return v.Target == "MASQUERADE" || v.Target == "SNAT" }

// Table is a parsed iptables-save dump.
type Table struct {
	policies map[string]string
	chains   map[string][]agent.Rule // "table/chain" → rules
}

// ParseTable parses iptables-save output.
func ParseTable(text string) Table {
	pol, rules := agent.ParseIPTables(text)
	t := Table{policies: pol, chains: map[string][]agent.Rule{}}
	for _, r := range rules {
		k := r.Table + "/" + r.Chain
		t.chains[k] = append(t.chains[k], r)
	}
	return t
}

// HasChain reports whether table has chain (declared or with rules).
func (t Table) HasChain(table, chain string) bool {
	_, declared := t.policies[table+"/"+chain]
	return declared || len(t.chains[table+"/"+chain]) > 0
}

// Policy is a built-in chain's policy ("" when the dump does not show it).
func (t Table) Policy(table, chain string) string { return t.policies[table+"/"+chain] }

// Eval walks chain of table for p as the kernel would, as far as a rule can
// be judged from iptables-save: addresses, interfaces, protocol and port,
// conntrack state (the packet is NEW), marks (it carries none) and address
// types. A rule with a match it cannot judge (ipsets, physdev) counts as
// matching when it accepts or NATs and as not matching when it drops, so a
// drop is only ever reported when it is certain.
func (t Table) Eval(table, chain string, p Packet) Verdict {
	v, done := t.walk(table, chain, p, 0, map[string]*walked{})
	if !done {
		v.Target, v.Rule, v.Chain = t.policies[table+"/"+chain], "", chain
		if v.Target == "" {
			v.Target = "ACCEPT"
		}
	}
	return v
}

// walked is a chain's outcome for the packet being evaluated; nil while
// the chain is still being walked.
type walked struct {
	v    Verdict
	done bool
}

// walk evaluates one chain; done is false when it fell through or returned.
// A chain's outcome depends only on the packet, so seen keeps each chain's
// for the rest of the walk: chains that jump to the same chain many times
// would otherwise take time exponential in their depth. A jump back into a
// chain still being walked (a loop, which the kernel refuses to load) counts
// as returning.
func (t Table) walk(table, chain string, p Packet, depth int, seen map[string]*walked) (Verdict, bool) {
	var v Verdict
	if depth > 32 {
		return v, false
	}
	if w, ok := seen[chain]; ok {
		if w == nil {
			return v, false
		}
		return w.v, w.done
	}
	seen[chain] = nil
	v, done := t.walkRules(table, chain, p, depth, seen)
	seen[chain] = &walked{v, done}
	return v, done
}

func (t Table) walkRules(table, chain string, p Packet, depth int, seen map[string]*walked) (Verdict, bool) {
	var v Verdict
	for _, r := range t.chains[table+"/"+chain] {
		m := match(r, p)
		if m == no {
			continue
		}
		target := r.Args["-j"]
		if target == "" {
			target = r.Args["-g"]
		}
		switch target {
		case "ACCEPT", "MASQUERADE", "SNAT", "DNAT":
			if target == "ACCEPT" && table == "nat" && addressed(r) {
				v.Exempt, v.ExemptChain = r.Line, chain
			}
			v.Target, v.Rule, v.Chain = target, r.Line, chain
			return v, true
		case "DROP", "REJECT":
			if m == maybe {
				continue
			}
			v.Target, v.Rule, v.Chain = target, r.Line, chain
			return v, true
		case "RETURN":
			if addressed(r) || isMasqAgent(chain) {
				v.Exempt, v.ExemptChain = r.Line, chain
			}
			return v, false
		case "", "MARK", "LOG", "CONNMARK", "TRACE", "CT", "NOTRACK", "NFLOG", "AUDIT", "CLASSIFY", "TCPMSS":
			continue
		default:
			sub, done := t.walk(table, target, p, depth+1, seen)
			if sub.Exempt != "" {
				v.Exempt, v.ExemptChain = sub.Exempt, sub.ExemptChain
			}
			if done {
				sub.Exempt, sub.ExemptChain = v.Exempt, v.ExemptChain
				return sub, true
			}
			if r.Args["-g"] != "" {
				return v, false // a goto returns to the caller's caller
			}
		}
	}
	return v, false
}

// addressed reports whether a rule singles out addresses: a RETURN or
// ACCEPT like that is an exemption, unlike kube-proxy's mark-based RETURN.
func addressed(r agent.Rule) bool {
	for _, k := range []string{"-d", "!-d", "-s", "!-s"} {
		if r.Args[k] != "" {
			return true
		}
	}
	return false
}

func isMasqAgent(chain string) bool { return strings.Contains(strings.ToUpper(chain), "MASQ-AGENT") }

type tri int

const (
	no tri = iota
	maybe
	yes
)

// match judges the conditions of r that iptables-save shows.
func match(r agent.Rule, p Packet) tri {
	if !cidrMatch(r.Args["-s"], p.Src, true) || !cidrMatch(r.Args["!-s"], p.Src, false) ||
		!cidrMatch(r.Args["-d"], p.Dst, true) || !cidrMatch(r.Args["!-d"], p.Dst, false) {
		return no
	}
	out := yes
	for _, c := range []struct{ flag, iface string }{{"-i", p.InIface}, {"-o", p.OutIface}} {
		pat := r.Args[c.flag]
		switch {
		case pat == "":
		case c.iface == "":
			out = maybe
		case ifaceMatch(pat, c.iface) == strings.Contains(r.Line, "! "+c.flag+" "):
			return no
		}
	}
	l := r.Line
	if pr := r.Args["-p"]; pr != "" && pr != "all" {
		switch {
		case p.Proto == "":
			out = maybe
		case (pr == p.Proto) == strings.Contains(l, "! -p "):
			return no
		}
	}
	if dp := r.Args["--dport"]; dp != "" {
		switch {
		case p.DPort == 0:
			out = maybe
		case !portMatch(dp, p.DPort):
			return no
		}
	}
	switch {
	case strings.Contains(l, "--mark") && !strings.Contains(l, "! --mark"):
		return no // a new packet carries no mark
	case strings.Contains(l, "--dst-type LOCAL") && !strings.Contains(l, "! --dst-type LOCAL"):
		return no // the destination is not a local address
	}
	if st := state(r); st != "" && strings.Contains(st, "NEW") == strings.Contains(l, "! --ctstate") {
		return no
	}
	for _, unknown := range []string{"--match-set", "-m physdev", "--physdev", "-m multiport", "-m statistic", "-m recent", "-m u32", "-m bpf", "-m owner", "-m cgroup"} {
		if strings.Contains(l, unknown) {
			out = maybe
		}
	}
	return out
}

func state(r agent.Rule) string {
	if s := r.Args["--ctstate"]; s != "" {
		return s
	}
	return r.Args["--state"]
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

func ifaceMatch(pattern, iface string) bool {
	return pattern == iface || (strings.HasSuffix(pattern, "+") && strings.HasPrefix(iface, strings.TrimSuffix(pattern, "+")))
}

func portMatch(spec string, port int) bool {
	lo, hi, isRange := strings.Cut(spec, ":")
	a, err := strconv.Atoi(lo)
	if err != nil {
		return true
	}
	if !isRange {
		return a == port
	}
	b, err := strconv.Atoi(hi)
	if err != nil {
		return true
	}
	return port >= a && port <= b
}
