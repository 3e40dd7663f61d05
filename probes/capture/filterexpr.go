package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParseFilter reads a filter written the way tcpdump's are, in the subset a
// FilterSpec can say: "host ADDR", "port N" and the protocols "tcp", "udp",
// "icmp" and "icmp6", alternatives of one kind joined by "or", kinds joined
// by "and", e.g. "tcp and (port 80 or port 443) and host 10.0.0.1". The
// hosts become Hosts. As in every FilterSpec, ICMP about the admitted
// traffic always passes. Its errors are one sentence saying what is wrong.
func ParseFilter(expr string) (FilterSpec, error) {
	var s FilterSpec
	toks := strings.Fields(strings.NewReplacer("(", " ( ", ")", " ) ").Replace(expr))
	if len(toks) == 0 {
		return s, errors.New("the filter is empty")
	}
	seen := map[string]bool{}
	for i := 0; i < len(toks); {
		if i > 0 {
			if toks[i] != "and" {
				return s, fmt.Errorf("expected \"and\" before %q (alternatives of one kind go in parentheses: \"(port 80 or port 443)\")", toks[i])
			}
			i++
		}
		group, next, err := filterGroup(toks, i, i == 0)
		if err != nil {
			return s, err
		}
		kind := group[0].kind
		if seen[kind] {
			return s, fmt.Errorf("%s is given twice; join alternatives with \"or\"", kind)
		}
		seen[kind] = true
		for _, p := range group {
			switch p.kind {
			case "host":
				s.Hosts = append(s.Hosts, p.addr)
			case "port":
				s.Ports = append(s.Ports, p.port)
			default:
				s.Protocols = append(s.Protocols, p.word)
			}
		}
		i = next
	}
	if _, err := s.normalize(); err != nil {
		return s, err
	}
	return s, nil
}

// primitive is one term of a filter.
type primitive struct {
	kind, word string // kind: host, port or protocol
	addr       netip.Addr
	port       uint16
}

// filterGroup reads "(p or p ...)" or "p or p ..." (the latter only first:
// tcpdump would join a later one's "or" with everything before it) from
// toks[i:], each p of one kind, and returns them and where it stopped.
func filterGroup(toks []string, i int, first bool) ([]primitive, int, error) {
	paren := i < len(toks) && toks[i] == "("
	if paren {
		i++
	}
	var out []primitive
	for {
		p, next, err := filterPrimitive(toks, i)
		if err != nil {
			return nil, 0, err
		}
		if len(out) > 0 && p.kind != out[0].kind {
			return nil, 0, fmt.Errorf("%q and %q are joined by \"or\"; only alternatives of one kind can be", out[0].word, p.word)
		}
		out, i = append(out, p), next
		if i < len(toks) && toks[i] == "or" {
			if !paren && !first {
				return nil, 0, errors.New("put alternatives after \"and\" in parentheses, e.g. \"tcp and (port 80 or port 443)\"")
			}
			i++
			continue
		}
		break
	}
	if paren {
		if i >= len(toks) || toks[i] != ")" {
			return nil, 0, errors.New("a parenthesis is not closed")
		}
		i++
	}
	return out, i, nil
}

// filterPrimitive reads one primitive at toks[i].
func filterPrimitive(toks []string, i int) (primitive, int, error) {
	if i >= len(toks) {
		return primitive{}, 0, errors.New("the filter ends where a term was expected (host ADDR, port N, tcp, udp, icmp or icmp6)")
	}
	w := strings.ToLower(toks[i])
	switch w {
	case "tcp", "udp", "icmp", "icmp6":
		return primitive{kind: "protocol", word: w}, i + 1, nil
	case "host", "port":
		if i+1 >= len(toks) {
			return primitive{}, 0, fmt.Errorf("%q needs a value", w)
		}
		v := toks[i+1]
		p := primitive{kind: w, word: w + " " + v}
		if w == "host" {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return primitive{}, 0, fmt.Errorf("%q is not an IP address", v)
			}
			p.addr = a
		} else {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return primitive{}, 0, fmt.Errorf("%q is not a port number (1-65535)", v)
			}
			p.port = uint16(n)
		}
		return p, i + 2, nil
	}
	return primitive{}, 0, fmt.Errorf("%q is not a filter term (host ADDR, port N, tcp, udp, icmp or icmp6)", toks[i])
}
