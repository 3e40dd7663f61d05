package dnsquery

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// DefaultResolvConf is where RunSearch reads resolv.conf by default.
const DefaultResolvConf = "/etc/resolv.conf"

// ParseResolvConf parses resolv.conf text with miekg/dns's parser.
func ParseResolvConf(text string) (ResolvConf, error) {
	cc, err := mdns.ClientConfigFromReader(strings.NewReader(text))
	if err != nil {
		return ResolvConf{}, fmt.Errorf("parsing resolv.conf: %w", err)
	}
	return ResolvConf{Nameservers: cc.Servers, Search: cc.Search, Ndots: cc.Ndots, TimeoutS: cc.Timeout, Attempts: cc.Attempts}, nil
}

// Candidates lists the names a stub resolver tries for name, in order: names
// with at least ndots dots go first as given, then each search domain.
func (rc ResolvConf) Candidates(name string) []string {
	cc := mdns.ClientConfig{Search: rc.Search, Ndots: rc.Ndots}
	return cc.NameList(name)
}

// RunSearch walks the search path for s.Name the way libc does: for each
// candidate it queries every type in s.Types and stops at the first
// candidate that gets an answer.
func RunSearch(ctx context.Context, s SearchSpec, timeout time.Duration) SearchResult {
	res := SearchResult{Name: s.Name}
	text := s.ResolvConf
	if text == "" {
		path := s.Path
		if path == "" {
			path = DefaultResolvConf
		}
		b, err := os.ReadFile(path)
		if err != nil {
			res.Error = err.Error()
			return res
		}
		text = string(b)
	}
	rc, err := ParseResolvConf(text)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.ResolvConf = rc
	res.Server = s.Server
	if res.Server == "" && len(rc.Nameservers) > 0 {
		res.Server = rc.Nameservers[0]
	}
	if res.Server == "" {
		res.Error = "resolv.conf has no nameserver"
		return res
	}
	types := s.Types
	if len(types) == 0 {
		types = []string{"A", "AAAA"}
	}
	res.Candidates = rc.Candidates(s.Name)
	c := &mdns.Client{Net: "udp", Timeout: timeout}
	for _, cand := range res.Candidates {
		found := false
		for _, t := range types {
			o := exchange(ctx, c, hostPort(res.Server), cand, mdns.StringToType[strings.ToUpper(t)], false)
			st := Step{Query: cand, Type: t, Ms: float64(o.rtt.Microseconds()) / 1000}
			switch {
			case o.err != nil && isTimeout(o.err):
				st.Rcode = "timeout"
			case o.err != nil:
				st.Rcode = "error: " + o.err.Error()
			default:
				st.Rcode = mdns.RcodeToString[o.msg.Rcode]
				found = found || o.msg.Rcode == mdns.RcodeSuccess && len(o.msg.Answer) > 0
				for _, rr := range o.msg.Answer {
					if a, ok := rr.(*mdns.A); ok && res.Address == "" {
						res.Address = a.A.String()
					}
				}
			}
			res.Steps = append(res.Steps, st)
			res.Queries++
			res.TotalMs += st.Ms
		}
		if found {
			res.ResolvedAs = cand
			break
		}
	}
	return res
}
