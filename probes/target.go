package probes

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// The kinds of --target value; a probe's Input says which it takes.
const (
	TargetIP   = "ip"   // an IPv4 address, optionally with :port
	TargetCIDR = "cidr" // an IPv4 CIDR, sampled
	TargetName = "name" // a DNS name, optionally with :port
)

var (
	dnsLabel   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	allNumeric = regexp.MustCompile(`^[0-9.]+$`)
)

// TargetKind says what kind of --target s is, or why it is none: an IPv4
// address or IP:port, an IPv4 CIDR, or a DNS name with at least one dot
// (host or host:port). Ports must be 1-65535.
func TargetKind(s string) (string, error) {
	if pf, err := netip.ParsePrefix(s); err == nil {
		if !pf.Addr().Is4() {
			return "", fmt.Errorf("%q is an IPv6 CIDR; only IPv4 targets are tried", s)
		}
		return TargetCIDR, nil
	}
	host := s
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q has port %q; a port is 1-65535", s, p)
		}
		host = h
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return "", fmt.Errorf("%q is an IPv6 address; only IPv4 targets are tried", s)
		}
		return TargetIP, nil
	}
	if allNumeric.MatchString(host) {
		return "", fmt.Errorf("%q is not a valid IPv4 address", s)
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(labels) < 2 || len(host) > 253 {
		return "", fmt.Errorf("%q is not an IPv4 address, CIDR or DNS name with a domain", s)
	}
	for _, l := range labels {
		if !dnsLabel.MatchString(l) {
			return "", fmt.Errorf("%q is not a valid DNS name (label %q)", s, l)
		}
	}
	return TargetName, nil
}
