// Package dnsquery measures DNS from wherever it runs: it sends real queries
// with github.com/miekg/dns to each given server, over UDP and TCP, and
// reports latency percentiles, timeouts, response codes and truncation per
// server, name and protocol; it also reads a resolv.conf and measures what
// the search path (ndots) costs a short name. It is plain Go with no
// Kubernetes dependency: agents run it in the cluster, tests run it on
// loopback, and its Spec and Result travel as JSON.
package dnsquery

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	mdns "github.com/miekg/dns"
)

// Limits keep one request bounded wherever it runs.
const (
	DefaultCount   = 5
	MaxCount       = 2000
	DefaultTimeout = 2 * time.Second
	MaxSeries      = 256
	MaxParallel    = 64
)

// Server is one DNS server to measure, labelled with the hop it stands for.
type Server struct {
	// Hop names the hop: "node-local", "kube-dns", "coredns-pod", "upstream".
	Hop string `json:"hop"`
	// Addr is "ip" (port 53) or "ip:port".
	Addr string `json:"addr"`
	// Label is free text for evidence, e.g. the pod name.
	Label string `json:"label,omitempty"`
}

// Spec is one measurement: every server × name × protocol, Count queries each.
type Spec struct {
	Servers []Server `json:"servers"`
	// Names are queried as given (fully qualified or not; a trailing dot is added).
	Names []string `json:"names"`
	// Type is the query type, "A" by default.
	Type string `json:"type,omitempty"`
	// Protocols are "udp" and/or "tcp"; both by default.
	Protocols []string `json:"protocols,omitempty"`
	// Count is the number of queries per series; DefaultCount when 0.
	Count int `json:"count,omitempty"`
	// TimeoutMs bounds each query; DefaultTimeout when 0.
	TimeoutMs int `json:"timeoutMs,omitempty"`
	// Parallel is how many queries of one series are in flight at once;
	// 1 (sequential, for latency) when 0.
	Parallel int `json:"parallel,omitempty"`
	// EDNS adds an EDNS0 OPT record with a 1232-byte UDP buffer, as dig does.
	EDNS bool `json:"edns,omitempty"`
	// Search, when set, also measures the resolv.conf search-path expansion.
	Search *SearchSpec `json:"search,omitempty"`
}

// SearchSpec asks how a short name is resolved through resolv.conf.
type SearchSpec struct {
	// Name is the short name, e.g. "kubernetes.default".
	Name string `json:"name"`
	// ResolvConf is the file's content; when empty Path is read
	// (/etc/resolv.conf by default).
	ResolvConf string `json:"resolvConf,omitempty"`
	Path       string `json:"path,omitempty"`
	// Server overrides the first nameserver ("ip" or "ip:port").
	Server string `json:"server,omitempty"`
	// Types are queried for each candidate, as libc does; A and AAAA by default.
	Types []string `json:"types,omitempty"`
}

// Series is the outcome of Count queries of one name to one server over one
// protocol.
type Series struct {
	Server Server `json:"server"`
	Name   string `json:"name"`
	Proto  string `json:"proto"`
	Sent   int    `json:"sent"`
	// Answered counts responses of any rcode; Timeouts and Errors the rest.
	Answered int `json:"answered"`
	Timeouts int `json:"timeouts"`
	Errors   int `json:"errors"`
	// Rcodes counts responses by code: NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...
	Rcodes map[string]int `json:"rcodes,omitempty"`
	// Truncated counts responses with the TC bit (UDP answers too large).
	Truncated int `json:"truncated,omitempty"`
	// Empty counts NOERROR responses without an answer (NODATA).
	Empty int `json:"empty,omitempty"`
	// P50Ms, P95Ms and MaxMs are latency percentiles of answered queries.
	P50Ms float64 `json:"p50Ms"`
	P95Ms float64 `json:"p95Ms"`
	MaxMs float64 `json:"maxMs"`
	// QPS is answered queries per second of wall time over the series.
	QPS float64 `json:"qps"`
	// Answers are the records of the first answered query.
	Answers   []string `json:"answers,omitempty"`
	LastError string   `json:"lastError,omitempty"`
}

// OK reports whether every query got a NOERROR answer without truncation.
func (s Series) OK() bool {
	return s.Sent > 0 && s.Answered == s.Sent && s.Rcodes["NOERROR"] == s.Sent && s.Truncated == 0
}

// ResolvConf is what a resolv.conf says.
type ResolvConf struct {
	Nameservers []string `json:"nameservers"`
	Search      []string `json:"search,omitempty"`
	Ndots       int      `json:"ndots"`
	TimeoutS    int      `json:"timeoutS"`
	Attempts    int      `json:"attempts"`
}

// Step is one query of the search-path walk.
type Step struct {
	Query string  `json:"query"`
	Type  string  `json:"type"`
	Rcode string  `json:"rcode"` // or "timeout" / "error"
	Ms    float64 `json:"ms"`
}

// SearchResult is the cost of resolving a short name through the search path.
type SearchResult struct {
	ResolvConf ResolvConf `json:"resolvConf"`
	Name       string     `json:"name"`
	Server     string     `json:"server"`
	// Candidates are the names tried, in order.
	Candidates []string `json:"candidates"`
	Steps      []Step   `json:"steps"`
	// ResolvedAs is the candidate that answered, "" when none did;
	// Address its first A record.
	ResolvedAs string `json:"resolvedAs,omitempty"`
	Address    string `json:"address,omitempty"`
	// Queries and TotalMs add up every step until the name resolved.
	Queries int     `json:"queries"`
	TotalMs float64 `json:"totalMs"`
	Error   string  `json:"error,omitempty"`
}

// Result is the outcome of one Spec.
type Result struct {
	Series []Series      `json:"series"`
	Search *SearchResult `json:"search,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// Bounds Validate holds a Spec to.
const (
	MaxTimeoutMs = 30_000
	maxServers   = 64
	maxNames     = 16
	maxNameLen   = 255
)

// Validate checks a Spec that came from elsewhere (an agent's stdin) without
// filling defaults: counts, timeouts and parallelism in range, servers that
// are "ip" or "ip:port", names of DNS length, known protocols and query
// types, at most MaxSeries series, and a search walk that reads no file but
// /etc/resolv.conf. Its error is one phrase.
func (s Spec) Validate() error {
	switch {
	case s.Count < 0 || s.Count > MaxCount:
		return fmt.Errorf("dns count %d is out of range; pass 0 (the default) to %d", s.Count, MaxCount)
	case s.TimeoutMs < 0 || s.TimeoutMs > MaxTimeoutMs:
		return fmt.Errorf("dns timeoutMs %d is out of range; pass 0 (the default) to %d", s.TimeoutMs, MaxTimeoutMs)
	case s.Parallel < 0 || s.Parallel > MaxParallel:
		return fmt.Errorf("dns parallel %d is out of range; pass 0 to %d", s.Parallel, MaxParallel)
	case len(s.Servers) > maxServers || len(s.Names) > maxNames:
		return fmt.Errorf("a dns measurement takes at most %d servers and %d names", maxServers, maxNames)
	}
	for _, srv := range s.Servers {
		if err := checkServer(srv.Addr); err != nil {
			return err
		}
	}
	for _, n := range s.Names {
		if n == "" || len(n) > maxNameLen || strings.ContainsFunc(n, unicode.IsSpace) {
			return fmt.Errorf("dns name %.80q is not a DNS name of at most %d bytes", n, maxNameLen)
		}
	}
	if _, err := s.normalize(); err != nil {
		return err
	}
	if sr := s.Search; sr != nil {
		if sr.Path != "" && sr.Path != DefaultResolvConf {
			return fmt.Errorf("the search walk reads only %s, not %.80q", DefaultResolvConf, sr.Path)
		}
		if sr.Name == "" || len(sr.Name) > maxNameLen || strings.ContainsFunc(sr.Name, unicode.IsSpace) {
			return fmt.Errorf("search name %.80q is not a DNS name of at most %d bytes", sr.Name, maxNameLen)
		}
		if sr.Server != "" {
			if err := checkServer(sr.Server); err != nil {
				return err
			}
		}
		for _, t := range sr.Types {
			if _, ok := mdns.StringToType[strings.ToUpper(t)]; !ok {
				return fmt.Errorf("unknown query type %.20q", t)
			}
		}
	}
	return nil
}

// checkServer accepts "ip" or "ip:port" with a port from 1 to 65535.
func checkServer(a string) error {
	host, port := a, "53"
	if h, p, err := net.SplitHostPort(a); err == nil {
		host, port = h, p
	}
	n, err := strconv.Atoi(port)
	if _, aerr := netip.ParseAddr(host); aerr != nil || err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("dns server %.80q is not an IP address with an optional port from 1 to 65535", a)
	}
	return nil
}
