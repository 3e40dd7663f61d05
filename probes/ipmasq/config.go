package ipmasq

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Config is ip-masq-agent's configuration as the agent would apply it.
type Config struct {
	NonMasqueradeCIDRs []netip.Prefix
	// CIDRsSet is false when the file omits nonMasqueradeCIDRs, so the agent
	// keeps its defaults.
	CIDRsSet          bool
	MasqLinkLocal     bool
	MasqLinkLocalIPv6 bool
	ResyncInterval    string
	CIDRLimit         int
	// UnknownKeys are keys the agent silently ignores.
	UnknownKeys []string
}

// The agent's defaults (kubernetes-sigs/ip-masq-agent NewMasqConfig).
var (
	rfc1918  = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
	reserved = []string{"100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4"}
)

const defaultCIDRLimit = 64

// Defaults returns the configuration the agent uses without a config file;
// allReserved mirrors its --nomasq-all-reserved-ranges flag.
func Defaults(allReserved bool) Config {
	cidrs := rfc1918
	if allReserved {
		cidrs = append(append([]string{}, rfc1918...), reserved...)
	}
	c := Config{ResyncInterval: "60s", CIDRLimit: defaultCIDRLimit}
	for _, s := range cidrs {
		c.NonMasqueradeCIDRs = append(c.NonMasqueradeCIDRs, netip.MustParsePrefix(s))
	}
	return c
}

// ParseConfig parses the ConfigMap's "config" document the way the agent
// does (YAML or JSON, fields overriding the defaults, unknown keys ignored)
// and validates it as the agent does: any error makes the agent reject the
// whole file. ipv6Enabled mirrors the agent's --enable-ipv6 flag; nil means
// unknown, which skips that check.
func ParseConfig(doc string, defaults Config, ipv6Enabled *bool) (Config, error) {
	c := defaults
	raw, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		return c, fmt.Errorf("YAML: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return c, fmt.Errorf("config is not a mapping: %w", err)
	}
	var file struct {
		NonMasqueradeCIDRs *[]string `json:"nonMasqueradeCIDRs"`
		CIDRLimit          *int      `json:"cidrLimit"`
		MasqLinkLocal      *bool     `json:"masqLinkLocal"`
		MasqLinkLocalIPv6  *bool     `json:"masqLinkLocalIPv6"`
		ResyncInterval     *string   `json:"resyncInterval"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		return c, fmt.Errorf("config fields: %w", err)
	}
	c.UnknownKeys = unknownKeys(fields)
	if file.CIDRLimit != nil {
		c.CIDRLimit = *file.CIDRLimit
	}
	if file.MasqLinkLocal != nil {
		c.MasqLinkLocal = *file.MasqLinkLocal
	}
	if file.MasqLinkLocalIPv6 != nil {
		c.MasqLinkLocalIPv6 = *file.MasqLinkLocalIPv6
	}
	if file.ResyncInterval != nil {
		if _, err := time.ParseDuration(*file.ResyncInterval); err != nil {
			return c, fmt.Errorf("resyncInterval %q: %w", *file.ResyncInterval, err)
		}
		c.ResyncInterval = *file.ResyncInterval
	}
	if file.NonMasqueradeCIDRs != nil {
		c.CIDRsSet = true
		c.NonMasqueradeCIDRs = nil
		for _, s := range *file.NonMasqueradeCIDRs {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				return c, fmt.Errorf("nonMasqueradeCIDRs: %w", err)
			}
			if p != p.Masked() {
				return c, fmt.Errorf("nonMasqueradeCIDRs: %s is not aligned to a CIDR block (network is %s)", s, p.Masked())
			}
			if p.Addr().Is6() && ipv6Enabled != nil && !*ipv6Enabled {
				return c, fmt.Errorf("nonMasqueradeCIDRs: IPv6 CIDR %s given but the agent runs without --enable-ipv6", s)
			}
			c.NonMasqueradeCIDRs = append(c.NonMasqueradeCIDRs, p)
		}
	}
	if n := len(c.NonMasqueradeCIDRs); n > c.CIDRLimit {
		return c, fmt.Errorf("%d nonMasqueradeCIDRs exceed cidrLimit %d", n, c.CIDRLimit)
	}
	return c, nil
}

func unknownKeys(fields map[string]json.RawMessage) []string {
	known := []string{"nonMasqueradeCIDRs", "cidrLimit", "masqLinkLocal", "masqLinkLocalIPv6", "resyncInterval"}
	var out []string
	for k := range fields {
		ok := false
		for _, want := range known {
			ok = ok || strings.EqualFold(k, want) // encoding/json matches keys case-insensitively
		}
		if !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Covered reports whether the union of set covers every address of p.
func Covered(p netip.Prefix, set []netip.Prefix) bool {
	p = p.Masked()
	inside := false
	for _, q := range set {
		if q.Addr().BitLen() != p.Addr().BitLen() {
			continue
		}
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
		inside = inside || q.Bits() > p.Bits() && p.Contains(q.Addr())
	}
	if !inside || p.Bits() == p.Addr().BitLen() {
		return false
	}
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	hiAddr := p.Addr().AsSlice()
	bit := p.Bits()
	hiAddr[bit/8] |= 0x80 >> (bit % 8)
	hi, _ := netip.AddrFromSlice(hiAddr)
	return Covered(lo, set) && Covered(netip.PrefixFrom(hi, p.Bits()+1), set)
}

// Manifest renders the ip-masq-agent ConfigMap for c.
func Manifest(c Config) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ip-masq-agent\n  namespace: kube-system\ndata:\n  config: |\n    nonMasqueradeCIDRs:")
	if len(c.NonMasqueradeCIDRs) == 0 {
		b.WriteString(" []") // an empty key would read as null: the defaults, not an empty list
	}
	b.WriteString("\n")
	for _, p := range c.NonMasqueradeCIDRs {
		fmt.Fprintf(&b, "      - %s\n", p)
	}
	fmt.Fprintf(&b, "    masqLinkLocal: %t\n", c.MasqLinkLocal)
	if c.MasqLinkLocalIPv6 {
		b.WriteString("    masqLinkLocalIPv6: true\n")
	}
	if c.CIDRLimit != defaultCIDRLimit && c.CIDRLimit > 0 {
		fmt.Fprintf(&b, "    cidrLimit: %d\n", c.CIDRLimit)
	}
	ri := c.ResyncInterval
	if _, err := strconv.ParseFloat(ri, 64); err == nil {
		ri = strconv.Quote(ri) // "0" is a valid interval; unquoted, YAML reads a number
	}
	fmt.Fprintf(&b, "    resyncInterval: %s\n", ri)
	return b.String()
}
