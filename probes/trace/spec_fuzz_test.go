package trace

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary FROM, TO and --port values to the trace
// question reader. An accepted question has a known source and destination
// kind, a port of 1-65535 over tcp or udp, and reads back the same from
// its own rendering (From and To); a refused one names the argument.
func FuzzParse(f *testing.F) {
	f.Add("shop/web", "shop/db:5432", "")
	f.Add("shop/deployment/web", "shop/svc/api:8080/tcp", "")
	f.Add("node/n1", "192.168.2.10", "")
	f.Add("shop/web", "192.168.2.0/24:443", "")
	f.Add("shop/web", "api.shop.svc.cluster.local", "53/udp")
	f.Add("shop/STS/db", "example.com.:443/UDP", "8443")
	f.Add("shop/web", "fd00::1:53", "")
	f.Add("a/b", "10.0.0.1/32", "0/tcp")
	f.Add("shop/web", "fd00::/64", "")    // was read as pod 64 in namespace fd00::
	f.Add("shop/web", "fd00::/64:80", "") // likewise, with a port
	f.Fuzz(func(t *testing.T, from, to, port string) {
		s, err := Parse(from, to, port)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "FROM ") && !strings.HasPrefix(msg, "TO ") && !strings.HasPrefix(msg, "--port ") {
				t.Fatalf("error %q names no argument", msg)
			}
			return
		}
		switch s.FromKind {
		case FromPod, FromWorkload, FromNode:
		default:
			t.Fatalf("source kind %q", s.FromKind)
		}
		switch s.ToKind {
		case ToPod, ToService, ToName:
		case ToAddress:
			if !s.ToAddr.Is4() {
				t.Fatalf("address %v", s.ToAddr)
			}
		default:
			t.Fatalf("destination kind %q", s.ToKind)
		}
		if s.Port < 1 || s.Port > 65535 || (s.Proto != "tcp" && s.Proto != "udp") {
			t.Fatalf("port %d/%s", s.Port, s.Proto)
		}
		again, err := Parse(s.From(), s.To(), "")
		if err != nil {
			t.Fatalf("Parse(%q, %q, %q) renders as %q → %q, which is refused: %v", from, to, port, s.From(), s.To(), err)
		}
		want := s
		want.ToNet, want.PortDefaulted = "", false // the rendering names the sampled address and the port
		if again != want {
			t.Fatalf("Parse(%q, %q, %q) renders as %q → %q, which reads as\n%+v, want\n%+v", from, to, port, s.From(), s.To(), again, want)
		}
	})
}
