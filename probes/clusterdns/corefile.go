package clusterdns

import (
	"strings"
)

// Directive is one line of a Corefile server block: a plugin name, its
// arguments, and the directives of its own { } block.
type Directive struct {
	Name  string
	Args  []string
	Block []Directive
}

// ServerBlock is one `zones { ... }` block of a Corefile.
type ServerBlock struct {
	Keys       []string // ".:53", "cluster.local:53"
	Directives []Directive
}

// Corefile is a parsed Corefile.
type Corefile struct {
	Blocks []ServerBlock
}

// Forward is one forward (or proxy) directive: queries for From go to To.
type Forward struct {
	From string
	To   []string
}

// newline separates statements in the token stream.
const newline = "\n"

// tokenize splits a Corefile into tokens; braces are tokens of their own,
// line ends are newline tokens and comments are dropped.
func tokenize(src string) []string {
	var toks []string
	for _, l := range strings.Split(src, "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		l = strings.NewReplacer("{", " { ", "}", " } ").Replace(l)
		toks = append(append(toks, strings.Fields(l)...), newline)
	}
	return toks
}

// ParseCorefile parses the subset of Corefile syntax CoreDNS deployments use:
// server blocks of plugin directives, each with an optional { } block, on
// one line or several. Unbalanced braces end the enclosing block, so a broken
// file still yields what could be read.
func ParseCorefile(src string) Corefile {
	toks := tokenize(src)
	var cf Corefile
	for i := 0; i < len(toks); {
		var keys []string
		for ; i < len(toks) && toks[i] != "{" && toks[i] != "}"; i++ {
			if toks[i] != newline {
				keys = append(keys, toks[i])
			}
		}
		if i >= len(toks) || toks[i] == "}" {
			i++ // stray text or brace outside a server block
			continue
		}
		sb := ServerBlock{Keys: keys}
		sb.Directives, i = parseBlock(toks, i+1)
		cf.Blocks = append(cf.Blocks, sb)
	}
	return cf
}

// parseBlock reads directives from toks[i] up to the closing brace and
// returns them with the index just past it.
func parseBlock(toks []string, i int) ([]Directive, int) {
	var out []Directive
	var cur *Directive
	for i < len(toks) {
		t := toks[i]
		i++
		switch {
		case t == "}":
			return out, i
		case t == newline:
			cur = nil
		case t == "{" && cur != nil:
			cur.Block, i = parseBlock(toks, i)
			cur = nil
		case t == "{":
			_, i = parseBlock(toks, i) // a block without a directive: skip it
		case cur == nil:
			out = append(out, Directive{Name: t})
			cur = &out[len(out)-1]
		default:
			cur.Args = append(cur.Args, t)
		}
	}
	return out, i
}

// Forwards returns every forward and proxy directive of every block.
func (c Corefile) Forwards() []Forward {
	var out []Forward
	for _, b := range c.Blocks {
		for _, d := range b.Directives {
			if (d.Name == "forward" || d.Name == "proxy") && len(d.Args) >= 2 {
				out = append(out, Forward{From: d.Args[0], To: d.Args[1:]})
			}
		}
	}
	return out
}

// KubernetesZones returns the zones of the kubernetes plugin, without
// trailing dots and reverse zones.
func (c Corefile) KubernetesZones() []string {
	var out []string
	for _, b := range c.Blocks {
		for _, d := range b.Directives {
			if d.Name != "kubernetes" {
				continue
			}
			zones := d.Args
			if len(zones) == 0 {
				zones = blockZones(b.Keys)
			}
			for _, z := range zones {
				z = strings.TrimSuffix(z, ".")
				if !strings.HasSuffix(z, ".arpa") && z != "" {
					out = append(out, z)
				}
			}
		}
	}
	return out
}

// Binds returns the addresses of bind directives.
func (c Corefile) Binds() []string {
	var out []string
	for _, b := range c.Blocks {
		for _, d := range b.Directives {
			if d.Name == "bind" {
				out = append(out, d.Args...)
			}
		}
	}
	return out
}

// Has reports whether any block uses plugin name.
func (c Corefile) Has(name string) bool {
	for _, b := range c.Blocks {
		for _, d := range b.Directives {
			if d.Name == name {
				return true
			}
		}
	}
	return false
}

// blockZones strips the ports from server block keys.
func blockZones(keys []string) []string {
	var out []string
	for _, k := range keys {
		k = strings.TrimPrefix(strings.TrimPrefix(k, "dns://"), "tls://")
		if i := strings.LastIndexByte(k, ':'); i >= 0 {
			k = k[:i]
		}
		out = append(out, k)
	}
	return out
}
