package ops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Bounds of one request. The agent refuses, as a whole and before running
// anything, a request that goes beyond them: it comes from whoever can exec
// into the agent pod, not only from netsleuth.
const (
	MaxRequestBytes = 1 << 20 // the JSON body read from stdin
	MaxOps          = 256     // ops in one request
	MaxCount        = 20      // echo requests of one ICMP or UDP op
	MaxTimeoutMs    = 30_000  // one attempt (iptables-save gets four)
	MaxPaths        = 32      // files of one read-files op
	maxTargetLen    = 253     // a DNS name's longest text form
	maxHTTPPathLen  = 1024
)

// Refusal is why an agent refuses a request: one sentence saying what is
// wrong and what to send instead, which the agent returns as
// Response.Error with a non-zero exit.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

func refuse(format string, args ...any) error {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// DecodeRequest reads one request from r: at most MaxRequestBytes of JSON
// holding one object with only the fields Request knows, valid by Validate.
func DecodeRequest(r io.Reader) (Request, error) {
	var req Request
	body, err := io.ReadAll(io.LimitReader(r, MaxRequestBytes+1))
	if err != nil {
		return req, fmt.Errorf("reading the request from stdin: %w", err)
	}
	if len(body) > MaxRequestBytes {
		return req, refuse("the request is larger than %d bytes; send fewer ops per request", MaxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return req, refuse("the request has field %.80s, which this agent does not know; use an agent image of the same version as netsleuth (--agent-image)", f)
		}
		return req, refuse("the request is not a JSON request object (%s)", oneLine(err.Error()))
	}
	if dec.More() || dec.Decode(&struct{}{}) != io.EOF {
		return req, refuse("the request has data after its JSON object; send exactly one request")
	}
	return req, req.Validate()
}

// Validate checks every op of the request against its kind: a known kind,
// counts, timeouts and ports in range, targets that are addresses or host
// names, read-files paths in the readable set (Readable), an iptables table
// by name, a bounded DNS measurement. It reads nothing from the system.
func (req Request) Validate() error {
	if len(req.Ops) > MaxOps {
		return refuse("the request has %d ops, more than the %d allowed; split it", len(req.Ops), MaxOps)
	}
	for i, o := range req.Ops {
		if err := o.validate(); err != nil {
			return refuse("op %d (%.40q): %v", i, o.Kind, err)
		}
	}
	return nil
}

// validate checks one op.
func (o Op) validate() error {
	switch {
	case o.Count < 0 || o.Count > MaxCount:
		return refuse("count %d is out of range; pass 0 to %d", o.Count, MaxCount)
	case o.TimeoutMs < 0 || o.TimeoutMs > MaxTimeoutMs:
		return refuse("timeoutMs %d is out of range; pass 0 (the default) to %d", o.TimeoutMs, MaxTimeoutMs)
	case o.Port < 0 || o.Port > 65535:
		return refuse("port %d is out of range; pass 1 to 65535", o.Port)
	}
	switch o.Kind {
	case TCP, UDP, HTTP:
		if o.Port == 0 {
			return refuse("a %s op needs a port from 1 to 65535", o.Kind)
		}
		if err := checkTarget(o.Target); err != nil {
			return err
		}
		if o.Kind == HTTP {
			return checkHTTPPath(o.Path)
		}
	case ICMP:
		return checkTarget(o.Target)
	case ReadFiles:
		return checkPaths(o.Paths)
	case Routes:
	case IPTablesSave:
		return checkTable(o.Table)
	case DNS:
		if o.DNS == nil {
			return refuse("a dns op needs a dns measurement")
		}
		if err := o.DNS.Validate(); err != nil {
			return refuse("%s", err.Error())
		}
	default:
		return refuse("unknown op kind; the agent runs %s", strings.Join(kindNames(), ", "))
	}
	return nil
}

func kindNames() []string {
	return []string{string(TCP), string(UDP), string(ICMP), string(HTTP), string(ReadFiles), string(Routes), string(IPTablesSave), string(DNS)}
}

// checkTarget accepts an IP address or a host name (letters, digits,
// hyphens and dots, as DNS allows).
func checkTarget(t string) error {
	if t == "" {
		return refuse("the op needs a target address or host name")
	}
	if _, err := netip.ParseAddr(t); err == nil {
		return nil
	}
	if !IsHostName(t) {
		return refuse("target %.80q is neither an IP address nor a host name", t)
	}
	return nil
}

// IsHostName reports whether s is a DNS host name: dot-separated labels of
// 1 to 63 letters, digits and hyphens (not at either end), 253 bytes at most,
// with an optional trailing dot.
func IsHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > maxTargetLen {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

// checkHTTPPath accepts "" or an absolute path of printable characters, so
// it can only ever name a resource on the op's own target.
func checkHTTPPath(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > maxHTTPPathLen || p[0] != '/' || strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return refuse("HTTP path %.80q is not an absolute path of at most %d printable characters", p, maxHTTPPathLen)
	}
	return nil
}

// iptablesTables are the tables iptables-save takes with -t.
var iptablesTables = []string{"filter", "nat", "mangle", "raw", "security"}

func checkTable(t string) error {
	if t == "" {
		return nil
	}
	for _, n := range iptablesTables {
		if t == n {
			return nil
		}
	}
	return refuse("iptables table %.80q is not one of %s", t, strings.Join(iptablesTables, ", "))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
