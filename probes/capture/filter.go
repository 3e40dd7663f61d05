package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// Limits of a FilterSpec.
const (
	MaxFilterHosts = 64
	MaxFilterPorts = 64
	// FilterSnapLen is what an accepting filter returns: the most of a
	// packet the kernel hands over (libpcap's MAXIMUM_SNAPLEN).
	FilterSnapLen = 262144
)

// FilterSpec is a capture filter in the terms a diagnosis needs.
//
// A packet is admitted when it is IPv4 or IPv6 directly on Ethernet (no
// VLAN tag), comes from or goes to one of Hosts (any host when Hosts is
// empty), and is TCP or UDP of one of Protocols to or from one of Ports,
// or any ICMP or ICMPv6 message. ICMP and ICMPv6 errors (destination
// unreachable, time exceeded, parameter problem, packet too big) are also
// admitted when the packet they quote was from or to one of Hosts, so a
// "port unreachable" a router sends about a host's traffic is captured.
//
// IPv6 extension headers are not walked: TCP, UDP and ICMPv6 must follow
// the fixed IPv6 header, except that "tcp", "udp" or ICMPv6 without ports
// also admit them after a fragment header, as tcpdump's "ip6 proto" does.
// Port tests on IPv4 skip non-first fragments, as tcpdump's do.
type FilterSpec struct {
	Hosts []netip.Addr
	// Peers, when set, narrow Hosts to their traffic with one of Peers:
	// one address of a packet must be in Hosts and the other in Peers (a
	// pod's traffic with one server). Without Hosts, Peers are Hosts.
	Peers []netip.Addr
	// Ports match as source or destination.
	Ports []uint16
	// Protocols are "tcp", "udp", "icmp" and "icmp6"; with Ports given and
	// no Protocols, TCP and UDP. ICMP to or from the hosts always passes.
	Protocols []string
}

// Packet offsets on Ethernet: the EtherType, then IPv4 and IPv6 fields.
const (
	offEtherType = 12
	offIP        = 14
	v4Proto      = offIP + 9
	v4Frag       = offIP + 6
	v4Src        = offIP + 12
	v4Dst        = offIP + 16
	v6Next       = offIP + 6
	v6Src        = offIP + 8
	v6Dst        = offIP + 24
	v6L4         = offIP + 40
	etherIPv4    = 0x0800
	etherIPv6    = 0x86dd
	protoFrag6   = 44
)

// normalized is a validated spec split by family.
type normalized struct {
	hosts4, hosts6 []netip.Addr
	peers4, peers6 []netip.Addr
	peers          bool // the spec has peers: hosts talk only to them
	ports          []uint32
	tcp, udp       bool
	icmpOnly       bool // protocols named only ICMP: no TCP or UDP
	anyHost        bool
	anyL4          bool // neither protocols nor ports: every protocol
}

func (s FilterSpec) normalize() (normalized, error) {
	var n normalized
	hosts, peers := s.Hosts, s.Peers
	if len(hosts) == 0 {
		hosts, peers = peers, nil
	}
	if len(hosts)+len(peers) > MaxFilterHosts || len(s.Ports) > MaxFilterPorts {
		return n, fmt.Errorf("a filter takes at most %d hosts and %d ports", MaxFilterHosts, MaxFilterPorts)
	}
	var err error
	if n.hosts4, n.hosts6, err = byFamily(hosts); err != nil {
		return n, err
	}
	if n.peers4, n.peers6, err = byFamily(peers); err != nil {
		return n, err
	}
	n.peers = len(peers) > 0
	for _, p := range s.Ports {
		n.ports = append(n.ports, uint32(p))
	}
	for _, p := range s.Protocols {
		switch strings.ToLower(p) {
		case "tcp":
			n.tcp = true
		case "udp":
			n.udp = true
		case "icmp", "icmp6", "icmpv6":
		default:
			return n, fmt.Errorf("filter protocol %q is not tcp, udp, icmp or icmp6", p)
		}
	}
	named := len(s.Protocols) > 0
	n.icmpOnly = named && !n.tcp && !n.udp
	if n.icmpOnly && len(n.ports) > 0 {
		return n, errors.New("filter ports need protocol tcp or udp")
	}
	if !named && len(n.ports) > 0 {
		n.tcp, n.udp = true, true
	}
	n.anyHost = len(n.hosts4)+len(n.hosts6) == 0
	n.anyL4 = !named && len(n.ports) == 0
	return n, nil
}

// byFamily splits addresses into IPv4 and IPv6.
func byFamily(as []netip.Addr) (v4, v6 []netip.Addr, err error) {
	for _, h := range as {
		if !h.IsValid() || h.Zone() != "" {
			return nil, nil, fmt.Errorf("filter host %q is not a plain IP address", h)
		}
		if h = h.Unmap(); h.Is4() {
			v4 = append(v4, h)
		} else {
			v6 = append(v6, h)
		}
	}
	return v4, v6, nil
}

// Instructions compiles the spec into a BPF program for Ethernet frames.
func (s FilterSpec) Instructions() ([]bpf.Instruction, error) {
	n, err := s.normalize()
	if err != nil {
		return nil, err
	}
	e := anyOf{
		allOf{eq(bpf.LoadAbsolute{Off: offEtherType, Size: 2}, etherIPv4), n.ipv4()},
		allOf{eq(bpf.LoadAbsolute{Off: offEtherType, Size: 2}, etherIPv6), n.ipv6()},
	}
	return compile(e, FilterSnapLen)
}

// Assemble compiles the spec into the raw program a socket takes.
func (s FilterSpec) Assemble() ([]bpf.RawInstruction, error) {
	ins, err := s.Instructions()
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(ins)
	if err != nil {
		return nil, fmt.Errorf("assemble filter: %w", err)
	}
	return raw, nil
}

func eq(load bpf.Instruction, vals ...uint32) test {
	return test{load: load, op: bpf.JumpEqual, vals: vals}
}

// ihl loads X with the IPv4 header length, for loads relative to it.
var ihl = []bpf.Instruction{bpf.LoadMemShift{Off: offIP}}

func eqAfterIHL(off uint32, size int, vals ...uint32) test {
	return test{pre: ihl, load: bpf.LoadIndirect{Off: offIP + off, Size: size}, op: bpf.JumpEqual, vals: vals}
}

var notFragment4 = test{load: bpf.LoadAbsolute{Off: v4Frag, Size: 2}, op: bpf.JumpBitsSet, vals: []uint32{0x1fff}, neg: true}

func words4(hosts []netip.Addr) []uint32 {
	out := make([]uint32, len(hosts))
	for i, h := range hosts {
		b := h.As4()
		out[i] = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	return out
}

// ipv4 is the condition on an IPv4 packet.
func (n normalized) ipv4() expr {
	if n.anyHost {
		return n.l4v4()
	}
	if len(n.hosts4) == 0 {
		return constant(false)
	}
	w := words4(n.hosts4)
	src, dst := bpf.LoadAbsolute{Off: v4Src, Size: 4}, bpf.LoadAbsolute{Off: v4Dst, Size: 4}
	var hosts expr = anyOf{eq(src, w...), eq(dst, w...)}
	if n.peers {
		hosts = constant(false)
		if pw := words4(n.peers4); len(pw) > 0 {
			hosts = anyOf{allOf{eq(src, w...), eq(dst, pw...)}, allOf{eq(src, pw...), eq(dst, w...)}}
		}
	}
	icmpErr := allOf{
		eq(bpf.LoadAbsolute{Off: v4Proto, Size: 1}, uint32(ProtoICMP)), notFragment4,
		eqAfterIHL(0, 1, 3, 11, 12),
		anyOf{eqAfterIHL(8+12, 4, w...), eqAfterIHL(8+16, 4, w...)},
	}
	return anyOf{allOf{hosts, n.l4v4()}, icmpErr}
}

// l4v4 is the protocol and port condition on IPv4.
func (n normalized) l4v4() expr {
	if n.anyL4 {
		return constant(true)
	}
	var alts anyOf
	for _, p := range n.l4() {
		proto := eq(bpf.LoadAbsolute{Off: v4Proto, Size: 1}, uint32(p))
		if len(n.ports) == 0 {
			alts = append(alts, proto)
			continue
		}
		alts = append(alts, allOf{proto, notFragment4, anyOf{eqAfterIHL(0, 2, n.ports...), eqAfterIHL(2, 2, n.ports...)}})
	}
	return append(alts, eq(bpf.LoadAbsolute{Off: v4Proto, Size: 1}, uint32(ProtoICMP)))
}

func (n normalized) l4() []Proto {
	var ps []Proto
	if n.tcp {
		ps = append(ps, ProtoTCP)
	}
	if n.udp {
		ps = append(ps, ProtoUDP)
	}
	return ps
}

// addr6 is true when the 16 bytes at off are h.
func addr6(off uint32, h netip.Addr) expr {
	b := h.As16()
	var e allOf
	for i := uint32(0); i < 4; i++ {
		w := uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
		e = append(e, eq(bpf.LoadAbsolute{Off: off + 4*i, Size: 4}, w))
	}
	return e
}

func hosts6At(hosts []netip.Addr, offs ...uint32) expr {
	var e anyOf
	for _, off := range offs {
		for _, h := range hosts {
			e = append(e, addr6(off, h))
		}
	}
	return e
}

// ipv6 is the condition on an IPv6 packet.
func (n normalized) ipv6() expr {
	if n.anyHost {
		return n.l4v6()
	}
	if len(n.hosts6) == 0 {
		return constant(false)
	}
	icmpErr := allOf{
		eq(bpf.LoadAbsolute{Off: v6Next, Size: 1}, uint32(ProtoICMPv6)),
		eq(bpf.LoadAbsolute{Off: v6L4, Size: 1}, 1, 2, 3, 4),
		hosts6At(n.hosts6, v6L4+8+8, v6L4+8+24),
	}
	hosts := hosts6At(n.hosts6, v6Src, v6Dst)
	if n.peers {
		hosts = constant(false)
		if len(n.peers6) > 0 {
			hosts = anyOf{allOf{hosts6At(n.hosts6, v6Src), hosts6At(n.peers6, v6Dst)},
				allOf{hosts6At(n.peers6, v6Src), hosts6At(n.hosts6, v6Dst)}}
		}
	}
	return anyOf{allOf{hosts, n.l4v6()}, icmpErr}
}

// proto6 is true for protocol p after the IPv6 header or a fragment header.
func proto6(p Proto) expr {
	return anyOf{
		eq(bpf.LoadAbsolute{Off: v6Next, Size: 1}, uint32(p)),
		allOf{eq(bpf.LoadAbsolute{Off: v6Next, Size: 1}, protoFrag6), eq(bpf.LoadAbsolute{Off: v6L4, Size: 1}, uint32(p))},
	}
}

// l4v6 is the protocol and port condition on IPv6.
func (n normalized) l4v6() expr {
	if n.anyL4 {
		return constant(true)
	}
	var alts anyOf
	for _, p := range n.l4() {
		if len(n.ports) == 0 {
			alts = append(alts, proto6(p))
			continue
		}
		alts = append(alts, allOf{eq(bpf.LoadAbsolute{Off: v6Next, Size: 1}, uint32(p)),
			anyOf{eq(bpf.LoadAbsolute{Off: v6L4, Size: 2}, n.ports...), eq(bpf.LoadAbsolute{Off: v6L4 + 2, Size: 2}, n.ports...)}})
	}
	return append(alts, proto6(ProtoICMPv6))
}

// String renders the tcpdump expression that admits the same packets, or
// "invalid filter: ..." for a spec that does not compile.
func (s FilterSpec) String() string {
	n, err := s.normalize()
	if err != nil {
		return "invalid filter: " + err.Error()
	}
	var parts []string
	if p := n.family("ip", n.hosts4, n.peers4); p != "" {
		parts = append(parts, p)
	}
	if len(n.hosts4) > 0 {
		var in []string
		for _, w := range words4(n.hosts4) {
			in = append(in, fmt.Sprintf("icmp[20:4] = %#08x or icmp[24:4] = %#08x", w, w))
		}
		parts = append(parts, "((icmp[0] = 3 or icmp[0] = 11 or icmp[0] = 12) and ("+strings.Join(in, " or ")+"))")
	}
	if p := n.family("ip6", n.hosts6, n.peers6); p != "" {
		parts = append(parts, p)
	}
	if len(n.hosts6) > 0 {
		var in []string
		for _, h := range n.hosts6 {
			in = append(in, words6(56, h), words6(72, h))
		}
		parts = append(parts, "(ip6[6] = 58 and ip6[40] >= 1 and ip6[40] <= 4 and ("+strings.Join(in, " or ")+"))")
	}
	if len(parts) == 0 {
		return "ip and not ip" // hosts were given, none of either family: nothing passes
	}
	return strings.Join(parts, " or ")
}

// family renders one family's part: "(ip and (ip host A) and (tcp port 80 or icmp))",
// with peers "(ip and (((ip src host A) and (ip dst host P)) or ((ip src host P) and (ip dst host A))) and ...)"
// (tcpdump gives "and" and "or" the same precedence: every group is in parentheses).
func (n normalized) family(fam string, hosts, peers []netip.Addr) string {
	if !n.anyHost && len(hosts) == 0 || n.peers && len(peers) == 0 {
		return ""
	}
	terms := []string{fam}
	switch {
	case n.peers:
		hs, ps := hostList(fam, "src ", hosts), hostList(fam, "dst ", peers)
		hd, pd := hostList(fam, "dst ", hosts), hostList(fam, "src ", peers)
		terms = append(terms, "(("+hs+" and "+ps+") or ("+pd+" and "+hd+"))")
	case !n.anyHost:
		terms = append(terms, hostList(fam, "", hosts))
	}
	if !n.anyL4 {
		var l4 []string
		for _, p := range n.l4() {
			if len(n.ports) == 0 {
				l4 = append(l4, p.String())
			}
			for _, port := range n.ports {
				l4 = append(l4, p.String()+" port "+strconv.Itoa(int(port)))
			}
		}
		icmp := "icmp"
		if fam == "ip6" {
			icmp = "icmp6"
		}
		terms = append(terms, "("+strings.Join(append(l4, icmp), " or ")+")")
	}
	return "(" + strings.Join(terms, " and ") + ")"
}

// hostList renders "(ip src host A or ip src host B)".
func hostList(fam, dir string, hosts []netip.Addr) string {
	var hs []string
	for _, h := range hosts {
		hs = append(hs, fam+" "+dir+"host "+h.String())
	}
	return "(" + strings.Join(hs, " or ") + ")"
}

// words6 renders "16 bytes at ip6[off] are h" as four 32-bit comparisons.
func words6(off int, h netip.Addr) string {
	b := h.As16()
	var ws []string
	for i := 0; i < 4; i++ {
		w := uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
		ws = append(ws, fmt.Sprintf("ip6[%d:4] = %#08x", off+4*i, w))
	}
	return "(" + strings.Join(ws, " and ") + ")"
}
