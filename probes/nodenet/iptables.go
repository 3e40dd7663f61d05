package nodenet

import (
	"net/netip"
	"slices"
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
	// Walked are the chains the packet entered, in the order it first
	// entered them (the built-in chain first), for evidence.
	Walked []string
}

// Dropped reports whether the packet is dropped or rejected.
func (v Verdict) Dropped() bool { return v.Target == "DROP" || v.Target == "REJECT" }

// NATed reports whether source NAT rewrites the packet.
func (v Verdict) NATed() bool { return v.Target == "MASQUERADE" || v.Target == "SNAT" }

// Table is a parsed iptables-save dump, with the ipsets its rules match
// when they are known.
type Table struct {
	policies map[string]string
	chains   map[string][]agent.Rule // "table/chain" → rules
	sets     IPSets                  // nil: no ipset facts
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

// WithIPSets returns t judging set matches against the sets of an
// `ipset save` dump ("" leaves them unjudged).
func (t Table) WithIPSets(save string) Table {
	if save != "" {
		t.sets = ParseIPSets(save)
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
// conntrack state (the packet is NEW), the packet mark (none at first, then
// what MARK rules on the way set), address types, and ipset membership when
// the sets are known. A rule with a match it cannot judge (an unknown set,
// physdev, a mark an unjudged rule may have set) counts as matching when it
// accepts or NATs and as not matching when it drops, so a drop is only ever
// reported when it is certain.
func (t Table) Eval(table, chain string, p Packet) Verdict {
	w := &walker{t: t, table: table, p: p, seen: map[walkKey]*walked{}}
	v, done, _ := w.walk(chain, markState{known: true}, 0)
	if !done {
		v.Target, v.Rule, v.Chain = t.policies[table+"/"+chain], "", chain
		if v.Target == "" {
			v.Target = "ACCEPT"
		}
	}
	v.Walked = w.order
	return v
}

// markState is the packet's mark as far as the walk knows it.
type markState struct {
	val   uint32
	known bool
}

type walkKey struct {
	chain string
	mark  markState
}

// walked is a chain's outcome for the packet entering it with a mark; nil
// while the chain is still being walked.
type walked struct {
	v    Verdict
	done bool
	mark markState
}

type walker struct {
	t     Table
	table string
	p     Packet
	seen  map[walkKey]*walked
	order []string
}

// walk evaluates one chain entered with mark; done is false when it fell
// through or returned, and out is the mark it leaves with. A chain's outcome
// depends only on the packet and its mark, so seen keeps each outcome for
// the rest of the walk: chains that jump to the same chain many times would
// otherwise take time exponential in their depth. A jump back into a chain
// still being walked (a loop, which the kernel refuses to load) counts as
// returning.
func (w *walker) walk(chain string, mark markState, depth int) (Verdict, bool, markState) {
	if depth > 32 {
		return Verdict{}, false, mark
	}
	k := walkKey{chain, mark}
	if r, ok := w.seen[k]; ok {
		if r == nil {
			return Verdict{}, false, mark
		}
		return r.v, r.done, r.mark
	}
	if !slices.Contains(w.order, chain) {
		w.order = append(w.order, chain)
	}
	w.seen[k] = nil
	v, done, out := w.rules(chain, mark, depth)
	w.seen[k] = &walked{v, done, out}
	return v, done, out
}

func (w *walker) rules(chain string, mark markState, depth int) (Verdict, bool, markState) {
	var v Verdict
	for _, r := range w.t.chains[w.table+"/"+chain] {
		m := w.t.match(r, w.p, mark)
		if m == no {
			continue
		}
		target := r.Args["-j"]
		if target == "" {
			target = r.Args["-g"]
		}
		switch target {
		case "ACCEPT", "MASQUERADE", "SNAT", "DNAT":
			if target == "ACCEPT" && w.table == "nat" && addressed(r) {
				v.Exempt, v.ExemptChain = r.Line, chain
			}
			v.Target, v.Rule, v.Chain = target, r.Line, chain
			return v, true, mark
		case "DROP", "REJECT":
			if m == maybe {
				continue
			}
			v.Target, v.Rule, v.Chain = target, r.Line, chain
			return v, true, mark
		case "RETURN":
			if addressed(r) || isMasqAgent(chain) {
				v.Exempt, v.ExemptChain = r.Line, chain
			}
			return v, false, mark
		case "MARK":
			mark = setMark(r, mark, m == yes)
			continue
		case "CONNMARK":
			if strings.Contains(r.Line, "--restore-mark") {
				mark.known = false
			}
			continue
		case "", "LOG", "TRACE", "CT", "NOTRACK", "NFLOG", "AUDIT", "CLASSIFY", "TCPMSS":
			continue
		default:
			sub, done, out := w.walk(target, mark, depth+1)
			if sub.Exempt != "" {
				v.Exempt, v.ExemptChain = sub.Exempt, sub.ExemptChain
			}
			if m == maybe {
				// The jump may not happen: a drop in there is not certain,
				// and the mark may or may not have changed.
				if done && !sub.Dropped() {
					sub.Exempt, sub.ExemptChain = v.Exempt, v.ExemptChain
					return sub, true, out
				}
				if out != mark {
					mark.known = false
				}
				continue
			}
			mark = out
			if done {
				sub.Exempt, sub.ExemptChain = v.Exempt, v.ExemptChain
				return sub, true, mark
			}
			if r.Args["-g"] != "" {
				return v, false, mark // a goto returns to the caller's caller
			}
		}
	}
	return v, false, mark
}

// setMark applies a MARK rule: --set-xmark V/M (what iptables-save prints)
// clears M and XORs V; --set-mark V/M clears M and ORs V. A rule that only
// may match leaves the mark unknown.
func setMark(r agent.Rule, mark markState, certain bool) markState {
	spec, xor := r.Args["--set-xmark"], true
	if spec == "" {
		spec, xor = r.Args["--set-mark"], false
	}
	val, mask, ok := parseMark(spec)
	if !ok || !certain || !mark.known {
		return markState{}
	}
	if xor {
		return markState{val: (mark.val &^ mask) ^ val, known: true}
	}
	return markState{val: (mark.val &^ mask) | val, known: true}
}

// parseMark reads "V/M" or "V" (mask all ones), in hex or decimal.
func parseMark(s string) (val, mask uint32, ok bool) {
	v, m, hasMask := strings.Cut(s, "/")
	a, err := strconv.ParseUint(v, 0, 32)
	if err != nil {
		return 0, 0, false
	}
	mask = 0xffffffff
	if hasMask {
		b, err := strconv.ParseUint(m, 0, 32)
		if err != nil {
			return 0, 0, false
		}
		mask = uint32(b)
	}
	return uint32(a), mask, true
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
func (t Table) match(r agent.Rule, p Packet, mark markState) tri {
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
	if strings.Contains(l, "--dst-type LOCAL") && !strings.Contains(l, "! --dst-type LOCAL") {
		return no // the destination is not a local address
	}
	for _, m := range []tri{markMatch(r, mark), t.setsMatch(l, p)} {
		switch m {
		case no:
			return no
		case maybe:
			out = maybe
		}
	}
	if st := state(r); st != "" && strings.Contains(st, "NEW") == strings.Contains(l, "! --ctstate") {
		return no
	}
	for _, unknown := range []string{"-m physdev", "--physdev", "-m multiport", "-m statistic", "-m recent", "-m u32", "-m bpf", "-m owner", "-m cgroup"} {
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

// markMatch judges "-m mark [!] --mark V[/M]" against what the walk knows
// of the packet's mark.
func markMatch(r agent.Rule, mark markState) tri {
	spec := r.Args["--mark"]
	if spec == "" {
		return yes
	}
	val, mask, ok := parseMark(spec)
	if !ok || !mark.known {
		return maybe
	}
	if (mark.val&mask == val) == strings.Contains(r.Line, "! --mark") {
		return no
	}
	return yes
}
