package policy

import (
	"strings"
)

// Matrix holds the verdict of every ordered pair of pods on each port.
type Matrix struct {
	e     *Engine
	Pods  []int // indexes into Engine.Pods, rows and columns in this order
	Ports []Port
	// allowed[q] is a bitset over all pod pairs: bit src*n+dst, n = len(e.Pods).
	allowed []bitset
}

// Allowed reports the verdict for Engine.Pods[src] -> Engine.Pods[dst] on
// Ports[q].
func (m *Matrix) Allowed(q, src, dst int) bool {
	return m.allowed[q].has(src*len(m.e.Pods) + dst)
}

// Matrix computes the verdict of every ordered pair of pods (all pods when
// pods is nil) on each port.
func (e *Engine) Matrix(ports []Port, pods []int) *Matrix {
	if pods == nil {
		pods = make([]int, len(e.Pods))
		for i := range pods {
			pods[i] = i
		}
	}
	m := &Matrix{e: e, Pods: pods, Ports: ports}
	n := len(e.Pods)
	inAllow := make([]bitset, n)
	outAllow := make([]bitset, n)
	for _, i := range pods {
		inAllow[i], outAllow[i] = newBitset(n), newBitset(n)
	}
	ones := newBitset(n)
	for i := 0; i < n; i++ {
		ones.set(i)
	}
	for _, q := range ports {
		for _, i := range pods {
			e.fillIngress(inAllow[i], i, q, ones)
			e.fillEgress(outAllow[i], i, q, ones)
		}
		m.allowed = append(m.allowed, e.pairs(pods, q, inAllow, outAllow))
	}
	return m
}

// pairs combines the per-pod allow sets into the pair bitset of one port.
func (e *Engine) pairs(pods []int, q Port, inAllow, outAllow []bitset) bitset {
	n := len(e.Pods)
	res := newBitset(n * n)
	for _, src := range pods {
		srcIso := len(e.out[src]) > 0 && !e.Pods[src].HostNetwork
		out := outAllow[src]
		base := src * n
		for _, dst := range pods {
			if srcIso && !out.has(dst) {
				continue
			}
			if len(e.in[dst]) > 0 && !e.Pods[dst].HostNetwork && !inAllow[dst].has(src) {
				continue
			}
			res.set(base + dst)
		}
	}
	return res
}

// fillIngress sets b to the pods that may send to dst on q, assuming dst is
// isolated for ingress.
func (e *Engine) fillIngress(b bitset, dst int, q Port, ones bitset) {
	b.clear()
	for _, pi := range e.in[dst] {
		for ri := range e.policies[pi].inRules {
			r := &e.policies[pi].inRules[ri]
			if !e.portMatches(r.ports, dst, q) {
				continue
			}
			if r.allPeers {
				copy(b, ones)
				return
			}
			for pj := range r.peers {
				b.or(r.peers[pj].pods)
			}
		}
	}
}

// fillEgress sets b to the pods src may send to on q, assuming src is
// isolated for egress. Named ports are resolved on each destination.
func (e *Engine) fillEgress(b bitset, src int, q Port, ones bitset) {
	b.clear()
	for _, pi := range e.out[src] {
		for ri := range e.policies[pi].outRules {
			r := &e.policies[pi].outRules[ri]
			numeric, named := e.egressPorts(r.ports, q)
			if numeric {
				e.orPeers(b, r, ones, nil)
				continue
			}
			for _, nb := range named {
				e.orPeers(b, r, ones, nb)
			}
		}
	}
}

// egressPorts reports whether a rule's ports admit q regardless of the
// destination, and otherwise the sets of pods whose named ports resolve to q.
func (e *Engine) egressPorts(ps []portSpec, q Port) (bool, []bitset) {
	if len(ps) == 0 {
		return true, nil
	}
	var named []bitset
	for i := range ps {
		s := &ps[i]
		switch {
		case s.proto != q.Protocol:
		case s.anyPort:
			return true, nil
		case s.name != "":
			if nb := e.named[namedKey{s.name, q}]; nb != nil {
				named = append(named, nb)
			}
		case q.Port >= s.start && q.Port <= s.end:
			return true, nil
		}
	}
	return false, named
}

// orPeers adds the rule's peers, limited to mask when mask is not nil.
func (e *Engine) orPeers(b bitset, r *compiledRule, ones, mask bitset) {
	if r.allPeers {
		orMasked(b, ones, mask)
		return
	}
	for pj := range r.peers {
		orMasked(b, r.peers[pj].pods, mask)
	}
}

func orMasked(dst, src, mask bitset) {
	if mask == nil {
		orInto(dst, src)
		return
	}
	for i := range dst {
		dst[i] |= src[i] & mask[i]
	}
}

// TruthTable renders the verdicts on Ports[q] as the upstream e2e tests print
// them: rows are sources, columns destinations, "." allowed, "X" denied.
func (m *Matrix) TruthTable(q int) string {
	var sb strings.Builder
	sb.WriteString(m.Ports[q].String())
	for _, d := range m.Pods {
		sb.WriteString("\t" + m.e.Pods[d].Key())
	}
	sb.WriteString("\n")
	for _, s := range m.Pods {
		sb.WriteString(m.e.Pods[s].Key())
		for _, d := range m.Pods {
			mark := "X"
			if m.Allowed(q, s, d) {
				mark = "."
			}
			sb.WriteString("\t" + mark)
		}
		sb.WriteString("\n")
	}
	return sb.String()
}
