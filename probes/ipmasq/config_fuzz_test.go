package ipmasq

import (
	"net/netip"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzParseConfig feeds an arbitrary ip-masq-agent config document to the
// reader, with --enable-ipv6 on, off or unknown. An accepted config stays
// within its cidrLimit with aligned CIDRs; the corrected ConfigMap that
// Manifest writes for it reads back as the same settings; and Covered of
// the first pod CIDR agrees with the CIDRs at the block's two ends.
func FuzzParseConfig(f *testing.F) {
	f.Add("nonMasqueradeCIDRs:\n  - 10.244.0.0/16\nmasqLinkLocal: true\nresyncInterval: 60s\n", uint8(0), "10.244.1.0/24")
	f.Add(`{"nonMasqueradeCIDRs":["10.0.0.0/8"],"resyncInterval":"1m0s","cidrLimit":1}`, uint8(1), "10.0.0.0/9")
	f.Add("nonMasqueradeCIDRs: [fd00::/48, 10.244.0.0/24, 10.244.1.0/24]\nmasqLinkLocalIPv6: true\ncidrLimit: 3\n", uint8(2), "10.244.0.0/23")
	f.Add("nonMasqueradeCidr:\n  - 10.244.0.0/16\nNONMASQUERADECIDRS: []\n", uint8(0), "fd00::/64")
	f.Add("resyncInterval: \"0\"\n", uint8(0), "0.0.0.0/0")
	f.Add("nonMasqueradeCIDRs: [10.244.1.0/16]\n", uint8(0), "")
	f.Fuzz(func(t *testing.T, doc string, v6 uint8, podCIDR string) {
		var ipv6 *bool
		if v6%3 != 0 {
			on := v6%3 == 1
			ipv6 = &on
		}
		c, err := ParseConfig(doc, Defaults(false), ipv6)
		if err != nil {
			return
		}
		if len(c.NonMasqueradeCIDRs) > c.CIDRLimit {
			t.Fatalf("%d CIDRs over the limit %d", len(c.NonMasqueradeCIDRs), c.CIDRLimit)
		}
		for _, p := range c.NonMasqueradeCIDRs {
			if p != p.Masked() || (ipv6 != nil && !*ipv6 && p.Addr().Is6()) {
				t.Fatalf("CIDR %s accepted", p)
			}
		}
		var cm struct {
			Data map[string]string `json:"data"`
		}
		m := Manifest(c)
		if err := yaml.Unmarshal([]byte(m), &cm); err != nil {
			t.Fatalf("manifest is not YAML: %v\n%s", err, m)
		}
		back, err := ParseConfig(cm.Data["config"], Defaults(false), ipv6)
		if err != nil {
			t.Fatalf("the corrected ConfigMap is rejected: %v\n%s", err, m)
		}
		if !slices.Equal(back.NonMasqueradeCIDRs, c.NonMasqueradeCIDRs) || back.MasqLinkLocal != c.MasqLinkLocal ||
			back.MasqLinkLocalIPv6 != c.MasqLinkLocalIPv6 || back.ResyncInterval != c.ResyncInterval ||
			(c.CIDRLimit > 0 && back.CIDRLimit != c.CIDRLimit) {
			t.Fatalf("the corrected ConfigMap reads as %+v, want %+v\n%s", back, c, m)
		}
		p, err := netip.ParsePrefix(podCIDR)
		if err != nil {
			return
		}
		p = p.Masked()
		if Covered(p, c.NonMasqueradeCIDRs) {
			last := p.Addr()
			for i := p.Bits(); i < p.Addr().BitLen(); i++ {
				b := last.AsSlice()
				b[i/8] |= 0x80 >> (i % 8)
				last, _ = netip.AddrFromSlice(b)
			}
			for _, a := range []netip.Addr{p.Addr(), last} {
				if !slices.ContainsFunc(c.NonMasqueradeCIDRs, func(q netip.Prefix) bool { return q.Contains(a) }) {
					t.Fatalf("%s is covered by %v but %s is in none", p, c.NonMasqueradeCIDRs, a)
				}
			}
		}
	})
}
