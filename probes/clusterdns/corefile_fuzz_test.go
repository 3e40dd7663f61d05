package clusterdns

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParseCorefile feeds arbitrary text to the Corefile parser. Tokens
// never hold blanks, braces or comments; the Corefile written back in
// canonical form (one directive a line, blocks indented) parses to the same
// structure; and the accessors' answers keep their promises.
func FuzzParseCorefile(f *testing.F) {
	f.Add(labCorefile)
	f.Add(nodeLocalCorefile)
	f.Add(".:53 {\n  errors\n  health {\n    lameduck 5s\n  }\n  kubernetes cluster.local in-addr.arpa ip6.arpa {\n    pods insecure\n    fallthrough in-addr.arpa ip6.arpa\n  }\n  forward . /etc/resolv.conf { max_concurrent 1000 }\n  cache 30\n}\n")
	f.Add("dns://cluster.local:53 tls://.:853 { bind 169.254.20.10 10.96.0.10 # nodelocal\n proxy . 10.96.0.11 }\n")
	f.Add("} stray { { nested } } .:53 { a { b { c } d } e\n")
	f.Fuzz(func(t *testing.T, src string) {
		cf := ParseCorefile(src)
		var b strings.Builder
		for _, sb := range cf.Blocks {
			for _, k := range sb.Keys {
				checkToken(t, k)
			}
			b.WriteString(strings.Join(sb.Keys, " ") + " {\n")
			writeDirectives(t, &b, sb.Directives, "  ")
			b.WriteString("}\n")
		}
		if again := ParseCorefile(b.String()); !reflect.DeepEqual(again, cf) {
			t.Fatalf("written back as\n%s\nit parses to %+v, want %+v", b.String(), again, cf)
		}
		for _, fw := range cf.Forwards() {
			if fw.From == "" || len(fw.To) == 0 {
				t.Fatalf("forward %+v", fw)
			}
		}
		for _, z := range cf.KubernetesZones() {
			if z == "" || strings.HasSuffix(z, ".") || strings.HasSuffix(z, ".arpa") {
				t.Fatalf("kubernetes zone %q", z)
			}
		}
		_ = cf.Binds()
		_ = cf.Has("kubernetes")
	})
}

func writeDirectives(t *testing.T, b *strings.Builder, ds []Directive, indent string) {
	for _, d := range ds {
		checkToken(t, d.Name)
		for _, a := range d.Args {
			checkToken(t, a)
		}
		b.WriteString(indent + strings.Join(append([]string{d.Name}, d.Args...), " "))
		if d.Block != nil {
			b.WriteString(" {\n")
			writeDirectives(t, b, d.Block, indent+"  ")
			b.WriteString(indent + "}")
		}
		b.WriteString("\n")
	}
}

func checkToken(t *testing.T, tok string) {
	t.Helper()
	if tok == "" || strings.ContainsAny(tok, "{}#") || len(strings.Fields(tok)) != 1 {
		t.Fatalf("token %q", tok)
	}
}
