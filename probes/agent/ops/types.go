// Package ops holds the operations a netsleuth agent runs inside the cluster:
// TCP connect, UDP echo, ICMP echo, HTTP GET, reading files under /proc and
// /proc/sys, the routing table, iptables-save and DNS measurements (package
// dnsquery, equally free of Kubernetes). A probe sends one Request
// as JSON on the agent's stdin and gets one Response back on stdout. The
// package is plain Go with no Kubernetes dependency; it imports nothing from
// the rest of netsleuth, so probes, the agent and tests can all share it.
package ops

import (
	"time"

	"github.com/netsleuth/netsleuth/probes/dnsquery"
)

// Kind names an operation.
type Kind string

// The operations an agent can run.
const (
	TCP          Kind = "tcp"           // connect to Target:Port
	UDP          Kind = "udp"           // send Count datagrams to Target:Port, expect them echoed
	ICMP         Kind = "icmp"          // Count ICMP echo requests to Target
	HTTP         Kind = "http"          // GET http(s)://Target:Port/Path
	ReadFiles    Kind = "read-files"    // read each of Paths (sysctls, /proc files)
	Routes       Kind = "routes"        // the IPv4 routing table and the route to Target
	IPTablesSave Kind = "iptables-save" // the host's iptables-save (node agent only)
	IPSetSave    Kind = "ipset-save"    // the host's `ipset save` (node agent only)
	DNS          Kind = "dns"           // DNS queries per server, name and protocol (package dnsquery)
)

// Op is one operation of a request.
type Op struct {
	Kind   Kind   `json:"kind"`
	Target string `json:"target,omitempty"`
	Port   int    `json:"port,omitempty"`
	Path   string `json:"path,omitempty"` // HTTP path
	// TLS makes an HTTP op use https without verifying the certificate
	// (the answer's status is what counts, e.g. a kubelet's 401).
	TLS bool `json:"tls,omitempty"`
	// Paths are the files ReadFiles reads.
	Paths []string `json:"paths,omitempty"`
	// Count is the number of echo requests (ICMP, UDP); 0 means 1.
	Count int `json:"count,omitempty"`
	// TimeoutMs bounds each attempt; 0 means DefaultTimeout.
	TimeoutMs int `json:"timeoutMs,omitempty"`
	// Table is the iptables table to save ("" for all).
	Table string `json:"table,omitempty"`
	// DNS is the measurement a DNS op runs.
	DNS *dnsquery.Spec `json:"dns,omitempty"`
}

// DefaultTimeout bounds an attempt whose Op gives no timeout.
const DefaultTimeout = 2 * time.Second

func (o Op) timeout() time.Duration {
	if o.TimeoutMs <= 0 {
		return DefaultTimeout
	}
	return time.Duration(o.TimeoutMs) * time.Millisecond
}

func (o Op) count() int {
	if o.Count <= 0 {
		return 1
	}
	return min(o.Count, 20)
}

// Request is what a probe asks one agent to do; the ops run concurrently.
type Request struct {
	Ops []Op `json:"ops"`
}

// Response is what the agent answers: where it ran, and one Result per Op in
// the order of the request.
type Response struct {
	Hostname string   `json:"hostname"`
	Addrs    []string `json:"addrs,omitempty"`
	Results  []Result `json:"results"`
}

// Outcome classifies how a network operation ended.
type Outcome string

// Outcomes of network operations; they are what a user would see by hand.
const (
	OK             Outcome = "ok"
	Refused        Outcome = "connection refused"  // TCP RST or ICMP port unreachable
	Timeout        Outcome = "timeout"             // nothing came back
	HostUnreach    Outcome = "no route to host"    // ICMP host unreachable or a local reject route
	NetUnreach     Outcome = "network unreachable" // ICMP net unreachable or no local route
	AdminProhibit  Outcome = "administratively prohibited"
	PartialLoss    Outcome = "partial loss"      // some echoes came back, some did not
	PermissionDeny Outcome = "permission denied" // the agent may not open the socket
	Failed         Outcome = "failed"            // anything else; see Error
)

// Result is what one Op found: what was sent, to where, and what came back.
type Result struct {
	Op      Op      `json:"op"`
	Outcome Outcome `json:"outcome"`
	// Error is the raw error text, when there was one.
	Error string `json:"error,omitempty"`
	// Local is the source address the kernel chose (network ops).
	Local string `json:"local,omitempty"`
	// Sent and Received count echo requests and replies (ICMP, UDP).
	Sent     int `json:"sent,omitempty"`
	Received int `json:"received,omitempty"`
	// RTTsMs are the round-trip times of the replies, or the connect time.
	RTTsMs []float64 `json:"rttsMs,omitempty"`
	// Status is the HTTP status code; Body its first bytes.
	Status int    `json:"status,omitempty"`
	Body   string `json:"body,omitempty"`
	// Files maps each path read to its trimmed content; missing ones are
	// absent and named in Error.
	Files map[string]string `json:"files,omitempty"`
	// Routes is the routing table (Routes op).
	Routes []Route `json:"routes,omitempty"`
	// Output is a command's output (iptables-save).
	Output string `json:"output,omitempty"`
	// DNS is what a DNS op measured.
	DNS *dnsquery.Result `json:"dns,omitempty"`
}

// Reached reports whether the operation got an answer from its target.
func (r Result) Reached() bool { return r.Outcome == OK || r.Outcome == PartialLoss }

// Loss is the fraction of echoes lost, 0 when nothing was sent.
func (r Result) Loss() float64 {
	if r.Sent == 0 {
		return 0
	}
	return float64(r.Sent-r.Received) / float64(r.Sent)
}

// AvgRTTMs is the mean round-trip time, 0 without replies.
func (r Result) AvgRTTMs() float64 {
	if len(r.RTTsMs) == 0 {
		return 0
	}
	var s float64
	for _, v := range r.RTTsMs {
		s += v
	}
	return s / float64(len(r.RTTsMs))
}
