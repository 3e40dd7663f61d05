package trace

import (
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

func TestParse(t *testing.T) {
	ok := []struct{ from, to, port, want string }{
		{"shop/web", "shop/db:5432", "", "shop/web → shop/db:5432/tcp"},
		{"shop/deployment/web", "shop/svc/api:8080/tcp", "", "shop/deployment/web → shop/svc/api:8080/tcp"},
		{"node/n1", "192.168.2.10", "", "node/n1 → 192.168.2.10:80/tcp"},
		{"shop/web", "192.168.2.0/24:443", "", "shop/web → 192.168.2.1:443/tcp"},
		{"shop/web", "api.shop.svc.cluster.local", "53/udp", "shop/web → api.shop.svc.cluster.local:53/udp"},
		{"shop/web", "example.com:443", "", "shop/web → example.com:443/tcp"},
	}
	for _, c := range ok {
		s, err := Parse(c.from, c.to, c.port)
		if err != nil || s.From()+" → "+s.To() != c.want {
			t.Errorf("Parse(%q, %q, %q) = %q, %v; want %q", c.from, c.to, c.port, s.From()+" → "+s.To(), err, c.want)
		}
	}
	bad := []struct{ from, to, port, want string }{
		{"web", "shop/db:1", "", "FROM \"web\" is not"},
		{"shop/web", "shop/db:99999", "", "port \"99999\" is not 1-65535"},
		{"shop/web", "not_a name!", "", "TO \"not_a name!\" is not"},
		{"shop/web", "10.0.0.1", "80/sctp", "protocol \"sctp\""},
		{"shop/frob/web", "10.0.0.1", "", "FROM \"shop/frob/web\""},
	}
	for _, c := range bad {
		if _, err := Parse(c.from, c.to, c.port); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q, %q, %q) err %v, want %q", c.from, c.to, c.port, err, c.want)
		}
	}
}

// TestDNSQuerySpecIsValid: the agent takes the resolution trace sends.
func TestDNSQuerySpecIsValid(t *testing.T) {
	spec := dnsquerySpec("kubernetes.default")
	if err := (ops.Request{Ops: []ops.Op{{Kind: ops.DNS, DNS: &spec}}}).Validate(); err != nil {
		t.Fatal(err)
	}
}
