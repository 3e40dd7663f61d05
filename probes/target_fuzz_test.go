package probes

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// FuzzTargetKind feeds arbitrary --target values to TargetKind. It returns
// a kind or an error, never both nor neither; an IP is an IPv4 address with
// an optional valid port, a CIDR an IPv4 prefix, and a name a dotted DNS
// name of at most 253 characters; an error starts with the value.
func FuzzTargetKind(f *testing.F) {
	for _, s := range []string{"192.168.2.10", "192.168.2.10:80", "192.168.2.0/24", "ext.netsleuth.test", "kubernetes.io.", "example.com:443",
		"notanip", "999.1.1.1", "c/d:99999", "10.0.0.1:0", "::1", "[::1]:53", "fd00::/64", "bad_label.example", "a..b", "-a.b", "1.2.3.4.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kind, err := TargetKind(s)
		if (kind == "") == (err == nil) {
			t.Fatalf("TargetKind(%q) = %q, %v", s, kind, err)
		}
		host := s
		if h, _, err := net.SplitHostPort(s); err == nil {
			host = h
		}
		switch kind {
		case "":
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("%q ", s)) {
				t.Fatalf("error %q does not start with the value", err)
			}
		case TargetIP:
			if a, err := netip.ParseAddr(host); err != nil || !a.Is4() {
				t.Fatalf("%q is an IP, but %q is no IPv4 address", s, host)
			}
		case TargetCIDR:
			if p, err := netip.ParsePrefix(s); err != nil || !p.Addr().Is4() {
				t.Fatalf("%q is a CIDR, but no IPv4 prefix", s)
			}
		case TargetName:
			name := strings.TrimSuffix(host, ".")
			if len(host) > 253 || !strings.Contains(name, ".") || strings.Contains(name, "..") || strings.ContainsAny(name, " /:_") {
				t.Fatalf("%q is a name, but %q is no DNS name with a domain", s, host)
			}
		default:
			t.Fatalf("TargetKind(%q) = unknown kind %q", s, kind)
		}
	})
}
