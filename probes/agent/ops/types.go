// Package ops holds the operations a netsleuth agent runs inside the cluster:
// TCP connect, UDP echo, ICMP echo, HTTP GET, reading files of the network
// stack (/proc/sys/net, /sys/class/net: Readable), the routing table,
// iptables-save and DNS measurements (package dnsquery, equally free of
// Kubernetes). A probe sends one Request as JSON on the agent's stdin and
// gets one Response back on stdout. The agent refuses, as a whole and with
// one sentence, any request that is not one JSON request within the bounds
// (DecodeRequest, Request.Validate, Env.Check). The
// package is plain Go with no Kubernetes dependency; it imports nothing from
// the rest of netsleuth, so probes, the agent and tests can all share it.
package ops

import (
	"fmt"
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
	ReadFiles    Kind = "read-files"    // read each of Paths (network sysctls and interface attributes)
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
	// Paths are the files ReadFiles reads, in the readable set (Readable).
	Paths []string `json:"paths,omitempty"`
	// Count is the number of echo requests (ICMP, UDP); 0 means 1, at
	// most MaxCount.
	Count int `json:"count,omitempty"`
	// TimeoutMs bounds each attempt; 0 means DefaultTimeout, at most
	// MaxTimeoutMs.
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
	return min(o.Count, MaxCount)
}

// Request is what a probe asks one agent to do; the ops run concurrently.
type Request struct {
	Ops []Op `json:"ops"`
	// Progress asks the agent to write each op's result as it finishes,
	// one Progress line each, before the Response: a request joining
	// several callers' ops hands each caller its results when its own ops
	// are done, not when the slowest op of another caller's is.
	Progress bool `json:"progress,omitempty"`
}

// Progress is one finished op of a Progress request: its index in the
// request and its result.
type Progress struct {
	Op     int    `json:"op"`
	Result Result `json:"result"`
}

// Response is what the agent answers: where it ran, and one Result per Op in
// the order of the request.
type Response struct {
	Hostname string   `json:"hostname"`
	Addrs    []string `json:"addrs,omitempty"`
	Results  []Result `json:"results"`
	// Error is why the agent refused the request, one sentence; then no op
	// ran and Results is empty.
	Error string `json:"error,omitempty"`
}

// Outcome classifies how a network operation ended. It is the one
// classification every probe and trace reason about: refused, reset,
// timeout, unreachable (which ICMP code) and no route are different facts
// with different causes, and only Arrived ones prove the path works.
type Outcome string

// Outcomes of network operations; they are what a user would see by hand.
const (
	OK             Outcome = "ok"
	Refused        Outcome = "connection refused"  // TCP RST or ICMP port unreachable
	Reset          Outcome = "connection reset"    // the peer reset a connection it had accepted
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
	// ICMP is the ICMP error that ended a TCP, UDP, HTTP or ICMP op, when
	// one came back (Linux agents read it from the socket's error queue).
	// Nil for an answer, a TCP reset, a timeout, or a refusal the kernel
	// made alone (no route).
	ICMP *ICMPError `json:"icmp,omitempty"`
}

// ICMPError is an ICMP error an operation got: its type and code, and the
// address that sent it: the target itself, or a router or a firewall on
// the way.
type ICMPError struct {
	Type int    `json:"type"`
	Code int    `json:"code"`
	From string `json:"from,omitempty"`
}

// unreachable names the destination-unreachable codes (RFC 792, 1122, 1812).
var unreachable = []string{"net unreachable", "host unreachable", "protocol unreachable", "port unreachable",
	"fragmentation needed", "source route failed", "network unknown", "host unknown", "source host isolated",
	"network administratively prohibited", "host administratively prohibited", "network unreachable for TOS",
	"host unreachable for TOS", "communication administratively prohibited", "host precedence violation", "precedence cutoff"}

func (e ICMPError) String() string {
	what := fmt.Sprintf("ICMP type %d code %d", e.Type, e.Code)
	if e.Type == 3 && e.Code < len(unreachable) {
		what = fmt.Sprintf("ICMP destination unreachable code %d (%s)", e.Code, unreachable[e.Code])
	}
	if e.From != "" {
		what += " from " + e.From
	}
	return what
}

// outcome is what a destination-unreachable code means, "" for other types.
func (e ICMPError) outcome() Outcome {
	if e.Type != 3 {
		return ""
	}
	return Classify(unreachErr(e.Code))
}

// Outcomes lists every Outcome, for legends and parsers.
var Outcomes = []Outcome{OK, Refused, Reset, Timeout, HostUnreach, NetUnreach, AdminProhibit, PartialLoss, PermissionDeny, Failed}

// Reached reports whether the operation got an answer from its target.
func (r Result) Reached() bool { return r.Outcome == OK || r.Outcome == PartialLoss }

// Arrived reports whether the packets reached the target's host: it
// answered, refused (a TCP reset, or an ICMP port unreachable from the
// target itself) or reset the connection. A refusal proves the network
// path works: nothing listens there. A timeout, an ICMP unreachable (a
// port unreachable from another address included: a firewall's REJECT) or
// no route are not arrivals.
func (r Result) Arrived() bool {
	if r.Outcome == Refused && r.ICMP != nil && r.ICMP.From != r.Op.Target {
		return false // a port unreachable from a firewall on the way (iptables REJECT), not from the target
	}
	return r.Reached() || r.Outcome == Refused || r.Outcome == Reset
}

// Rejected reports whether a firewall turned the packets back: an
// administrative prohibition, or an ICMP port unreachable in answer to a
// TCP connect (a TCP stack answers a closed port with a reset, iptables'
// REJECT with that ICMP).
func (r Result) Rejected() bool {
	return r.Outcome == AdminProhibit || (r.Outcome == Refused && r.ICMP != nil && r.Op.Kind != UDP)
}

// NotListening reports whether the target's host answered that nothing
// listens there: a refusal or a reset that arrived and no firewall made.
func (r Result) NotListening() bool {
	return (r.Outcome == Refused || r.Outcome == Reset) && r.Arrived() && !r.Rejected()
}

// Arrived reports whether any of rs arrived.
func Arrived(rs []Result) bool {
	for _, r := range rs {
		if r.Arrived() {
			return true
		}
	}
	return false
}

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
