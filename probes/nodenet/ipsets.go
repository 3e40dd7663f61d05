package nodenet

import (
	"net/netip"
	"strings"
)

// IPSets are a node's address sets from `ipset save`, by name. A set of a
// kind Eval cannot judge (ports, interfaces, lists of sets, nomatch
// entries) is nil: rules matching it stay unjudged.
type IPSets map[string][]netip.Prefix

// ParseIPSets reads `ipset save` output. Only one-dimensional address sets
// (hash:ip, hash:net) are kept with their members.
func ParseIPSets(save string) IPSets {
	out := IPSets{}
	for _, line := range strings.Split(save, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		switch f[0] {
		case "create":
			if f[2] == "hash:ip" || f[2] == "hash:net" {
				out[f[1]] = []netip.Prefix{}
			} else {
				out[f[1]] = nil
			}
		case "add":
			members, ok := out[f[1]]
			if !ok || members == nil {
				continue
			}
			p, err := parseMember(f[2])
			if err != nil || strings.Contains(line, " nomatch") {
				out[f[1]] = nil // a member Eval cannot read: judge nothing by this set
				continue
			}
			out[f[1]] = append(members, p)
		}
	}
	return out
}

func parseMember(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Has reports whether set name holds a, and whether that can be told.
func (s IPSets) Has(name string, a netip.Addr) (has, known bool) {
	members, ok := s[name]
	if !ok || members == nil {
		return false, false
	}
	for _, p := range members {
		if p.Contains(a) {
			return true, true
		}
	}
	return false, true
}

// setsMatch judges every "[!] --match-set NAME src|dst" of a rule line.
func (t Table) setsMatch(line string, p Packet) tri {
	f := strings.Fields(line)
	out := yes
	for i := 0; i+2 < len(f); i++ {
		if f[i] != "--match-set" {
			continue
		}
		neg := i > 0 && f[i-1] == "!"
		var addr netip.Addr
		switch f[i+2] {
		case "src":
			addr = p.Src
		case "dst":
			addr = p.Dst
		default:
			out = maybe // several dimensions: ports, interfaces
			continue
		}
		has, known := t.sets.Has(f[i+1], addr)
		switch {
		case t.sets == nil || !known || !addr.IsValid():
			out = maybe
		case has == neg:
			return no
		}
	}
	return out
}
