package capture

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gopacket/gopacket/layers"
)

// Verdict is what a flow shows, in the words a person would use.
type Verdict uint8

// The verdicts. Each has a short ID (String) and, in a Finding, a sentence.
const (
	VerdictUnknown      Verdict = iota
	TCPNoReply                  // SYN with no reply
	TCPRefused                  // SYN answered by RST: the path works, nothing listens
	TCPEstablished              // handshake completed
	TCPReset                    // established, then reset
	TCPHandshakeStalled         // SYN-ACK came back, the client never acknowledged it
	TCPMidStream                // no handshake in the capture
	ICMPUnreachable             // an ICMP destination-unreachable came back for the flow
	ICMPFragNeeded              // fragmentation needed / packet too big came back
	ICMPTimeExceeded            // the TTL ran out on the way
	DNSNoAnswer                 // queries, no response
	DNSNXDomain                 // the name does not exist
	DNSServFail                 // the server failed
	DNSError                    // another error rcode (REFUSED, NOTIMP, ...)
	DNSAnswered                 // NOERROR
	UDPNoReply                  // datagrams one way only
	UDPAnswered                 // datagrams both ways
	EchoAnswered                // ping answered
	EchoUnanswered              // ping unanswered
	ICMPMessages                // a flow of ICMP messages other than echo (errors, neighbour discovery)
	OtherTraffic                // another IP protocol
	SourceNotTranslated         // a pod address left the node's uplink
	ReplyDropped                // a reply seen on one interface is missing on the next
	RequestNotForwarded         // a request seen on one interface never left on the next
)

var verdictIDs = [...]string{"unknown", "tcp-no-reply", "tcp-refused", "tcp-established", "tcp-reset",
	"tcp-handshake-stalled", "tcp-mid-stream", "icmp-unreachable", "icmp-frag-needed", "icmp-time-exceeded",
	"dns-no-answer", "dns-nxdomain", "dns-servfail", "dns-error", "dns-answered", "udp-no-reply",
	"udp-answered", "echo-answered", "echo-unanswered", "icmp-messages", "other-traffic",
	"source-not-translated", "reply-dropped", "request-not-forwarded"}

// String is the verdict's short ID, e.g. "tcp-refused".
func (v Verdict) String() string {
	if int(v) < len(verdictIDs) {
		return verdictIDs[v]
	}
	return "unknown"
}

// Problem reports whether the verdict points at a fault rather than at
// traffic that worked.
func (v Verdict) Problem() bool {
	switch v {
	case TCPEstablished, DNSAnswered, UDPAnswered, EchoAnswered, ICMPMessages, OtherTraffic, TCPMidStream:
		return false
	}
	return v != VerdictUnknown
}

// Finding is a verdict and the sentence that says it about one flow.
type Finding struct {
	Verdict  Verdict
	Sentence string
}

func finding(v Verdict, format string, args ...any) Finding {
	return Finding{Verdict: v, Sentence: fmt.Sprintf(format, args...)}
}

// Classify says what one flow shows: its verdict (Judge) and the sentence
// that says it. A flow joined from two halves (join.go) says so.
func Classify(f *Flow) Finding {
	v := Judge(f)
	s := sentence(f, v)
	if from, to, ok := f.RepliesSeenAs(); ok {
		s += fmt.Sprintf("; its replies were seen here translated back (%s → %s)", from, to)
	}
	return Finding{Verdict: v, Sentence: s}
}

// Judge is the verdict on one flow, without its sentence. An ICMP error
// about the flow comes first: it explains the silence of whatever else the
// flow shows.
func Judge(f *Flow) Verdict {
	if e := f.ICMP; e != nil {
		switch e.Kind {
		case FragNeeded:
			return ICMPFragNeeded
		case TimeExceeded:
			return ICMPTimeExceeded
		}
		return ICMPUnreachable
	}
	switch {
	case f.Proto() == ProtoTCP:
		return judgeTCP(f)
	case f.DNS != nil:
		return judgeDNS(f.DNS)
	case f.Proto() == ProtoUDP && f.Rev.Packets == 0:
		return UDPNoReply
	case f.Proto() == ProtoUDP:
		return UDPAnswered
	case f.IsEcho && f.Rev.Packets == 0:
		return EchoUnanswered
	case f.IsEcho:
		return EchoAnswered
	case f.Proto() == ProtoICMP || f.Proto() == ProtoICMPv6:
		return ICMPMessages
	}
	return OtherTraffic
}

func judgeTCP(f *Flow) Verdict {
	back := f.Rev.Flags
	switch {
	case f.Fwd.SYNs == 0:
		return TCPMidStream
	case back&FlagSYN != 0 && f.RST():
		return TCPReset
	case back&FlagSYN != 0 && f.Fwd.Flags&FlagACK == 0:
		return TCPHandshakeStalled
	case back&FlagSYN != 0:
		return TCPEstablished
	case back&FlagRST != 0:
		return TCPRefused
	case f.Rev.Packets == 0:
		return TCPNoReply
	}
	return TCPMidStream // answered without SYN-ACK
}

func judgeDNS(d *DNSInfo) Verdict {
	if d.Responses == 0 {
		return DNSNoAnswer
	}
	switch d.Rcode {
	case layers.DNSResponseCodeNoErr:
		return DNSAnswered
	case layers.DNSResponseCodeNXDomain:
		return DNSNXDomain
	case layers.DNSResponseCodeServFail:
		return DNSServFail
	}
	return DNSError
}

// sentence words verdict v on flow f.
func sentence(f *Flow, v Verdict) string {
	switch {
	case f.ICMP != nil:
		return icmpErrorSentence(f.ICMP)
	case f.Proto() == ProtoTCP:
		return tcpSentence(f, v)
	case f.DNS != nil:
		return dnsSentence(f, v)
	}
	switch v {
	case UDPNoReply:
		return fmt.Sprintf("UDP with no reply (%s to %s, nothing back)", count(uint64(f.Fwd.Packets), "datagram"), f.Server())
	case UDPAnswered:
		return fmt.Sprintf("UDP both ways (%d sent, %d back)", f.Fwd.Packets, f.Rev.Packets)
	case EchoUnanswered:
		return fmt.Sprintf("ICMP echo unanswered (%s to %s)", count(uint64(f.Fwd.Packets), "request"), f.Server().Addr())
	case EchoAnswered:
		return fmt.Sprintf("ICMP echo answered (%d of %d)", f.Rev.Packets, f.Fwd.Packets)
	case ICMPMessages:
		return fmt.Sprintf("ICMP messages (type %d) from %s to %s", f.ICMPType, f.Client().Addr(), f.Server().Addr())
	}
	return fmt.Sprintf("%s between %s and %s", count(f.Packets(), f.Proto().String()+" packet"), f.Client().Addr(), f.Server().Addr())
}

func icmpErrorSentence(e *ICMPError) string {
	times := ""
	if e.Count > 1 {
		times = fmt.Sprintf(" (%d times)", e.Count)
	}
	switch e.Kind {
	case FragNeeded:
		what := "fragmentation needed"
		if e.V6 {
			what = "packet too big"
		}
		return fmt.Sprintf("ICMP %s (next-hop MTU %d) from %s%s", what, e.MTU, e.From, times)
	case TimeExceeded:
		return fmt.Sprintf("ICMP time exceeded from %s: the TTL ran out on the way%s", e.From, times)
	case ParamProblem:
		return fmt.Sprintf("ICMP parameter problem from %s%s", e.From, times)
	case UnreachAdmin:
		return fmt.Sprintf("ICMP administratively prohibited from %s: a filter rejects the traffic%s", e.From, times)
	}
	return fmt.Sprintf("ICMP %s unreachable from %s%s", e.Kind, e.From, times)
}

func tcpSentence(f *Flow, v Verdict) string {
	switch {
	case v == TCPMidStream && f.Fwd.SYNs == 0:
		reset := ""
		if f.RST() {
			reset = ", reset"
		}
		return fmt.Sprintf("TCP without a handshake in the capture (%s%s)", count(f.Packets(), "packet"), reset)
	case v == TCPReset:
		return fmt.Sprintf("connection established, reset by the %s after %d bytes", resetter(f), f.Fwd.Payload+f.Rev.Payload)
	case v == TCPHandshakeStalled:
		return fmt.Sprintf("SYN-ACK from %s never acknowledged", f.Server())
	case v == TCPEstablished:
		return fmt.Sprintf("connection established (%d bytes sent, %d received)", f.Fwd.Payload, f.Rev.Payload)
	case v == TCPRefused:
		return fmt.Sprintf("SYN answered by RST: connection refused, the path to %s works but nothing listens on port %d",
			f.Server().Addr(), f.Server().Port())
	case v == TCPNoReply:
		return fmt.Sprintf("SYN with no reply (%s to %s, nothing back)", count(uint64(f.Fwd.SYNs), "SYN"), f.Server())
	}
	return fmt.Sprintf("SYN answered without SYN-ACK (%d packets back)", f.Rev.Packets)
}

func resetter(f *Flow) string {
	if f.Rev.Flags&FlagRST != 0 {
		return "server"
	}
	return "client"
}

func dnsSentence(f *Flow, v Verdict) string {
	d := f.DNS
	q := fmt.Sprintf("%s (%s)", d.Name, d.Type)
	if v == DNSNoAnswer {
		return fmt.Sprintf("DNS query for %s with no answer (%s to %s)", q, count(uint64(d.Queries), "query"), f.Server())
	}
	also := ""
	if d.Unanswered > 0 {
		also = fmt.Sprintf("; %s without response", count(uint64(d.Unanswered), "query"))
	}
	switch v {
	case DNSAnswered:
		if len(d.Answers()) == 0 {
			return fmt.Sprintf("DNS answered %s with no records (NODATA)%s", q, also)
		}
		parts := make([]string, len(d.Answers()))
		for i, a := range d.Answers() {
			parts[i] = a.String()
		}
		return fmt.Sprintf("DNS answered %s: %s%s", q, strings.Join(parts, ", "), also)
	case DNSNXDomain:
		return fmt.Sprintf("DNS NXDOMAIN for %s: the name does not exist%s", q, also)
	case DNSServFail:
		return fmt.Sprintf("DNS SERVFAIL for %s: the server could not resolve it%s", q, also)
	}
	return fmt.Sprintf("DNS %s for %s%s", d.Rcode, q, also)
}

// count renders "1 SYN" or "3 SYNs"; nouns ending in y take "ies".
func count(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Context is what the classifier knows about where a capture was taken.
type Context struct {
	// Uplink is set when the capture's interface is the node's uplink
	// (the interface towards the rest of the network).
	Uplink bool
	// PodCIDRs are the pod address ranges.
	PodCIDRs []netip.Prefix
	// ClusterCIDRs are every cluster-internal range: pods, services, nodes.
	ClusterCIDRs []netip.Prefix
}

// PodContext is the Context of a cluster whose pods have the addresses of
// podCIDRs (those that do not parse are left out).
func PodContext(podCIDRs []string) Context {
	var ctx Context
	for _, c := range podCIDRs {
		if pf, err := netip.ParsePrefix(c); err == nil {
			ctx.PodCIDRs = append(ctx.PodCIDRs, pf)
		}
	}
	return ctx
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CheckSNAT reports a flow that a pod started towards an
// off-cluster address and whose packets left the uplink with the pod's
// own address as source: masquerading (SNAT) did not happen.
func CheckSNAT(f *Flow, ctx Context) (Finding, bool) {
	src, dst := f.Client().Addr(), f.Server().Addr()
	if !ctx.Uplink || f.Fwd.Packets == 0 || !contains(ctx.PodCIDRs, src) ||
		contains(ctx.ClusterCIDRs, dst) || contains(ctx.PodCIDRs, dst) {
		return Finding{}, false
	}
	return finding(SourceNotTranslated, "source not translated: %s to %s left %s with the pod's own address (no SNAT/masquerade)",
		src, f.Server(), f.Iface), true
}

// Result is a flow and what it shows: its Classify finding first, then
// any the context adds.
type Result struct {
	Flow     *Flow
	Findings []Finding
}

// ClassifyTable classifies every flow of a table, in first-seen order.
func ClassifyTable(t *Table, ctx Context) []Result {
	flows := t.Flows()
	out := make([]Result, len(flows))
	for i, f := range flows {
		out[i] = Result{Flow: f, Findings: []Finding{Classify(f)}}
		if fd, ok := CheckSNAT(f, ctx); ok {
			out[i].Findings = append(out[i].Findings, fd)
		}
	}
	return out
}
