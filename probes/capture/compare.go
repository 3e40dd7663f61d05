package capture

import "net/netip"

// Difference is a flow whose traffic one capture shows and the next one
// along the path lacks.
type Difference struct {
	// Near is the flow in the capture closer to the client; Far the
	// matching flow further along the path, nil when there is none.
	Near, Far *Flow
	Finding
}

// endpointKey finds a flow by protocol and one endpoint.
type endpointKey struct {
	proto Proto
	ep    netip.AddrPort
}

// serverKey finds a flow by protocol, server and client port.
type serverKey struct {
	proto  Proto
	server netip.AddrPort
	cport  uint16
}

// matcher finds the flow of one table that is the same conversation as a
// flow of another, across the address translations of a node: exactly by
// key; else by the client endpoint (the server was translated, as a
// Service's DNAT does); else by the server and the client port (the client
// address was translated, as masquerading does when it keeps the port).
type matcher struct {
	t        *Table
	byClient map[endpointKey]*Flow
	byServer map[serverKey]*Flow
}

func newMatcher(t *Table) *matcher {
	m := &matcher{t: t, byClient: map[endpointKey]*Flow{}, byServer: map[serverKey]*Flow{}}
	for _, f := range t.Flows() {
		ck := endpointKey{f.Proto(), f.Client()}
		if _, dup := m.byClient[ck]; !dup {
			m.byClient[ck] = f
		}
		sk := serverKey{f.Proto(), f.Server(), f.Client().Port()}
		if _, dup := m.byServer[sk]; !dup {
			m.byServer[sk] = f
		}
	}
	return m
}

// exact finds the flow of the same key.
func (m *matcher) exact(f *Flow) *Flow { return m.t.Lookup(f.Key()) }

// translated finds a flow of another key that no exact match took.
func (m *matcher) translated(f *Flow, used map[*Flow]bool) *Flow {
	if g := m.byClient[endpointKey{f.Proto(), f.Client()}]; g != nil && !used[g] {
		return g
	}
	if g := m.byServer[serverKey{f.Proto(), f.Server(), f.Client().Port()}]; g != nil && !used[g] {
		return g
	}
	return nil
}

// pairs matches every flow of near that a comparison considers with a
// flow of far (or nil): exact keys first, translated ones among the rest.
func (m *matcher) pairs(near []*Flow) map[*Flow]*Flow {
	out := make(map[*Flow]*Flow, len(near))
	used := map[*Flow]bool{}
	for _, nf := range near {
		if g := m.exact(nf); g != nil {
			out[nf] = g
			used[g] = true
		}
	}
	for _, nf := range near {
		if _, ok := out[nf]; ok {
			continue
		}
		g := m.translated(nf, used)
		if g != nil {
			used[g] = true
		}
		out[nf] = g
	}
	return out
}

// Compare looks at two captures of the same traffic, near closer to the
// client (a pod's veth) and far further along the path (the node's bridge
// or uplink), and reports requests that near saw and that never left on
// far, and replies that far saw and that never reached near. ICMP error
// flows are left out: they are compared through the flows they concern.
func Compare(near, far *Table) []Difference {
	var flows []*Flow
	for _, nf := range near.Flows() {
		if nf.Fwd.Packets > 0 && (nf.IsEcho || nf.Proto() != ProtoICMP && nf.Proto() != ProtoICMPv6) {
			flows = append(flows, nf)
		}
	}
	pairs := newMatcher(far).pairs(flows)
	var out []Difference
	for _, nf := range flows {
		ff := pairs[nf]
		switch {
		case ff == nil || ff.Fwd.Packets == 0:
			out = append(out, Difference{Near: nf, Far: ff, Finding: finding(RequestNotForwarded,
				"request seen on %s, never left on %s (%s %s to %s)", near.Iface, far.Iface,
				nf.Proto(), nf.Client(), nf.Server())})
		case ff.Rev.Packets > 0 && nf.Rev.Packets == 0:
			out = append(out, Difference{Near: nf, Far: ff, Finding: finding(ReplyDropped,
				"reply seen on %s but not on %s (dropped on the node): %s from %s to %s",
				far.Iface, near.Iface, count(uint64(ff.Rev.Packets), nf.Proto().String()+" packet"), ff.Server(), ff.Client())})
		}
	}
	return out
}
