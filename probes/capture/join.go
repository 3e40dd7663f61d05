package capture

import "net/netip"

// Joining the two halves of a translated connection.
//
// A node rewrites addresses in netfilter (a pod's source masqueraded to the
// node's address, a Service's ClusterIP to an endpoint), and where a capture
// taps packets relative to netfilter decides which addresses it sees. On a
// plain NIC, the usual uplink, the tap sees the wire both ways: requests
// after POSTROUTING (already masqueraded), replies before PREROUTING (still
// to the node's address), so a connection is one 5-tuple. On a Linux bridge
// with br_netfilter (bridge-nf-call-iptables=1, which kubeadm requires), as
// bridged uplinks of VM hosts and bare-metal nodes are, the bridge device's
// receive tap comes after bridge netfilter has run PREROUTING on the frame
// of its port, conntrack's reverse NAT included: the replies are seen
// already translated back to the pod while the requests are seen leaving
// masqueraded. A CNI bridge shows the same with a Service's DNAT: requests
// after DNAT (to the endpoint), replies after its reverse (from the
// ClusterIP). One connection shows as two one-way flows, and the request
// half alone reads "SYN with no reply".
//
// Capturing on the bridge's port towards the next hop would see the wire,
// but which port that is depends on what the bridge's forwarding database
// has learnt (nothing, for a path that never worked), a bridge may have many
// ports (VMs, other nodes), and a CNI bridge's ports are the pods themselves.
// So the analysis joins the halves, from what a translation leaves alone:
//   - TCP: the reply half's first acknowledgement number acknowledges what
//     the request half sent (its SYN's sequence number + 1, for a SYN-ACK or
//     a RST). NAT rewrites addresses and ports, never sequence numbers, so
//     this holds when masquerading picks another port (--random-fully) too;
//   - UDP and ICMP echo carry no such number: the translated side keeps its
//     port (or echo identifier), as MASQUERADE and DNAT do unless the port is
//     taken or remapped, a DNS reply half answers the question asked, and
//     the reply half starts after the request half;
//   - an ICMP error about the request, quoting it with the addresses
//     translated back, joins by the same port rule.
// The halves share the endpoint that was not translated: the server for a
// source NAT, the client for a destination NAT. The joined flow keeps the
// request half's addresses (what was sent on this interface) and counts the
// reply half's packets as its replies; Conversations still counts each half
// under its own addresses, as tshark does.

// flowView is the table's flows as Flows returns them, halves joined.
type flowView struct {
	flows []*Flow
	// of maps both halves' records to their joined flow.
	of map[*Flow]*Flow
	// packets and n are the table's packet and record counts it was
	// built at: a view of fewer is stale.
	packets uint64
	n       int
}

// joinedView returns the table's view, building it when packets came since.
func (t *Table) joinedView() *flowView {
	if v := t.view; v != nil && v.packets == t.Stats.Packets && v.n == t.flows.n {
		return v
	}
	v := joinHalves(t.rawFlows())
	v.packets, v.n = t.Stats.Packets, t.flows.n
	t.view = v
	return v
}

// endpointIndex finds reply halves by the hash of one of their endpoints:
// chains of flow positions (in first-seen order), a few bytes a flow.
type endpointIndex struct {
	head map[uint64]int32 // hash → the first flow's position + 1
	next []int32          // position → the next flow's position + 1, 0 at the end
}

func newEndpointIndex(n int) endpointIndex {
	return endpointIndex{head: map[uint64]int32{}, next: make([]int32, n)}
}

func endpointHash(proto Proto, ep netip.AddrPort) uint64 {
	a := ep.Addr().As16()
	return endpointWord(&a, ep.Port()) + uint64(proto)
}

// push puts the flow at position i first in its chain: pushed in reverse
// first-seen order, chains are in first-seen order.
func (x endpointIndex) push(proto Proto, ep netip.AddrPort, i int) {
	h := endpointHash(proto, ep)
	x.next[i] = x.head[h]
	x.head[h] = int32(i + 1)
}

// first returns the first flow of raw, not yet joined, indexed under ep's
// hash that is req's reply half.
func (x endpointIndex) first(req *Flow, proto Proto, ep netip.AddrPort, raw []*Flow, joined map[*Flow]*Flow) *Flow {
	for p := x.head[endpointHash(proto, ep)]; p != 0; p = x.next[p-1] {
		if rep := raw[p-1]; joined[rep] == nil && sameTranslated(req, rep) {
			return rep
		}
	}
	return nil
}

// joinHalves joins every request half (flows in first-seen order) with the
// first reply half, not yet taken, that is the same connection translated.
func joinHalves(raw []*Flow) *flowView {
	v := &flowView{flows: raw}
	var reqs []int32
	var byFrom, byTo endpointIndex
	for i := len(raw) - 1; i >= 0; i-- {
		f := raw[i]
		if requestHalf(f) {
			reqs = append(reqs, int32(i))
		}
		if from, to, ok := replyHalf(f); ok {
			if byFrom.head == nil {
				byFrom, byTo = newEndpointIndex(len(raw)), newEndpointIndex(len(raw))
			}
			byFrom.push(f.proto, from, i)
			byTo.push(f.proto, to, i)
		}
	}
	if len(reqs) == 0 || byFrom.head == nil {
		return v
	}
	v.of = map[*Flow]*Flow{}
	for k := len(reqs) - 1; k >= 0; k-- {
		req := raw[reqs[k]]
		if v.of[req] != nil {
			continue
		}
		// A source NAT leaves the server alone, a destination NAT the client.
		rep := byFrom.first(req, req.proto, req.Server(), raw, v.of)
		if rep == nil {
			rep = byTo.first(req, req.proto, req.Client(), raw, v.of)
		}
		if rep != nil {
			j := join(req, rep)
			v.of[req], v.of[rep] = j, j
		}
	}
	if len(v.of) == 0 {
		return v
	}
	v.flows = make([]*Flow, 0, len(raw)-len(v.of)/2)
	for _, f := range raw {
		switch j := v.of[f]; {
		case j == nil:
			v.flows = append(v.flows, f)
		case j.alias != f: // the request half: the joined flow takes its place
			v.flows = append(v.flows, j)
		}
	}
	return v
}

// requestHalf reports whether f could be the request half of a translated
// connection: packets from its client only (for TCP, a SYN among them).
func requestHalf(f *Flow) bool {
	switch {
	case f.Fwd.Packets == 0 || f.Rev.Packets > 0:
		return false
	case f.proto == ProtoTCP:
		return f.Fwd.SYNs > 0
	case f.proto == ProtoICMP || f.proto == ProtoICMPv6:
		return f.IsEcho
	}
	return true
}

// replyHalf reports whether f could be the reply half of a translated
// connection: packets one way only, or none but an ICMP error about it;
// from sent them, to received them.
func replyHalf(f *Flow) (from, to netip.AddrPort, ok bool) {
	if (f.proto == ProtoICMP || f.proto == ProtoICMPv6) && !f.IsEcho {
		return from, to, false
	}
	switch {
	case f.Fwd.Packets > 0 && f.Rev.Packets > 0:
		return from, to, false
	case f.Fwd.Packets > 0:
		return f.Client(), f.Server(), true
	case f.Rev.Packets > 0 || f.ICMP != nil:
		return f.Server(), f.Client(), true
	}
	return from, to, false
}

// sent is what endpoint from of f sent.
func (f *Flow) sent(from netip.AddrPort) Direction {
	if from == f.Client() {
		return f.Fwd
	}
	return f.Rev
}

// sameTranslated reports whether rep is the reply half of req's connection,
// seen with one side translated back (see the comment at the top).
func sameTranslated(req, rep *Flow) bool {
	from, to, ok := replyHalf(rep)
	if !ok || rep == req || rep.proto != req.proto || rep.first < req.first {
		return false
	}
	snat := from == req.Server() && to.Addr() != req.Client().Addr()
	dnat := to == req.Client() && from.Addr() != req.Server().Addr()
	if !snat && !dnat {
		return false
	}
	if d := rep.sent(from); req.proto == ProtoTCP && d.Packets > 0 {
		return d.Flags&FlagACK != 0 && acknowledges(&req.Fwd, d.firstAck)
	}
	if q, r := req.DNS, rep.DNS; q != nil && r != nil && (q.Name != r.Name || q.Type != r.Type) {
		return false
	}
	if snat {
		return to.Port() == req.Client().Port()
	}
	return from.Port() == req.Server().Port()
}

// acknowledges reports whether ack acknowledges what direction d sent:
// from its SYN's sequence number + 1 to one past the last byte it sent.
func acknowledges(d *Direction, ack uint32) bool {
	return d.SYNs > 0 && int32(ack-(d.synSeq+1)) >= 0 && int32(d.nextSeq-ack) >= 0
}

// join is the flow of a connection whose request half is req and whose
// reply half is rep: req's addresses and packets, rep's as its replies.
func join(req, rep *Flow) *Flow {
	from, _, _ := replyHalf(rep)
	j := *req
	j.alias = rep
	j.Rev = rep.sent(from)
	j.first, j.last = min(req.first, rep.first), max(req.last, rep.last)
	j.ICMP = joinICMP(req.ICMP, rep.ICMP)
	j.DNS = joinDNS(req.DNS, rep.DNS)
	return &j
}

// joinICMP is the later of two flows' ICMP errors, counting both.
func joinICMP(a, b *ICMPError) *ICMPError {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	e := *a
	if b.Time.After(a.Time) {
		e = *b
	}
	e.Count = a.Count + b.Count
	return &e
}

// joinDNS is the DNS of a request half q and its reply half r: r's
// question, rcode and answers, q's queries. As many of q's unanswered
// queries count answered as r has responses (r's IDs are not kept).
func joinDNS(q, r *DNSInfo) *DNSInfo {
	switch {
	case q == nil:
		return r
	case r == nil:
		return q
	}
	d := *r
	d.Queries = q.Queries
	d.Answered = q.Answered + min(q.Unanswered, r.Responses)
	d.Unanswered = q.Unanswered - min(q.Unanswered, r.Responses)
	return &d
}

// RepliesSeenAs is, for a flow joined from two halves, the addresses its
// replies had on this interface, already translated back: from and to.
func (f *Flow) RepliesSeenAs() (from, to netip.AddrPort, ok bool) {
	if f.alias == nil {
		return from, to, false
	}
	return replyHalf(f.alias)
}
