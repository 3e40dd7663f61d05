package capture

import (
	"encoding/binary"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// icmpError records an ICMP or ICMPv6 error on the flow it concerns,
// found from the IP header and first transport bytes the error quotes.
// The quoted IPv6 packet is read without walking extension headers: TCP,
// UDP or ICMPv6 must follow its fixed header. info is the 32-bit field
// after the checksum (it holds the MTU of a frag-needed or packet-too-big
// message); quoted starts at the quoted IP header.
func (t *Table) icmpError(p *pkt, v6 bool, typ, code uint8, info uint32, quoted []byte) {
	q, ok := parseQuoted(quoted, v6)
	if !ok {
		return
	}
	h := flowHash(q.proto, &q.src, q.sport, &q.dst, q.dport)
	var f *Flow
	if i, slot, _ := t.index.find(&t.flows, h, q.proto, &q.src, q.sport, &q.dst, q.dport); i >= 0 {
		f = t.flows.at(i)
	} else {
		// The packet the error is about was not captured: the flow is
		// known from the error alone, with no packets of its own.
		f = t.newFlow(h, slot, q.proto, q.src, q.dst, q.sport, q.dport)
		f.IsEcho = q.echo
		f.first, f.last = p.ts, p.ts
	}
	if f.ICMP == nil {
		f.ICMP = t.icmps.alloc()
	}
	e := f.ICMP
	e.Type, e.Code, e.V6 = typ, code, v6
	e.Kind, e.MTU = icmpKind(v6, typ, code, info)
	e.From = addrOf(p.src)
	e.Count++
	e.Time = time.Unix(0, p.ts).UTC()
	if t.onPacket != nil {
		t.onPacket(f, p)
	}
}

// quotedHeader is the original packet an ICMP error quotes.
type quotedHeader struct {
	src, dst     [16]byte
	sport, dport uint16
	proto        Proto
	echo         bool
}

// parseQuoted reads the IP header and the first 8 transport bytes quoted
// by an ICMP error.
func parseQuoted(b []byte, v6 bool) (q quotedHeader, ok bool) {
	var l4 []byte
	if v6 {
		if len(b) < 40 || b[0]>>4 != 6 {
			return q, false
		}
		q.proto = Proto(b[6])
		copy(q.src[:], b[8:24])
		copy(q.dst[:], b[24:40])
		l4 = b[40:]
	} else {
		if len(b) < 20 || b[0]>>4 != 4 {
			return q, false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return q, false
		}
		q.proto = Proto(b[9])
		q.src, q.dst = mapped4(b[12:16]), mapped4(b[16:20])
		l4 = b[ihl:]
	}
	switch q.proto {
	case ProtoTCP, ProtoUDP:
		if len(l4) >= 4 {
			q.sport, q.dport = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		}
	case ProtoICMP, ProtoICMPv6:
		echoReq := uint8(layers.ICMPv4TypeEchoRequest)
		if v6 {
			echoReq = layers.ICMPv6TypeEchoRequest
		}
		if len(l4) >= 6 && l4[0] == echoReq {
			q.echo = true
			q.sport = binary.BigEndian.Uint16(l4[4:])
			q.dport = q.sport
		}
	}
	return q, true
}

// icmpKind names an error and its next-hop MTU, if it carries one.
func icmpKind(v6 bool, typ, code uint8, info uint32) (ICMPErrorKind, uint32) {
	if v6 {
		return icmp6Kind(typ, code, info)
	}
	switch typ {
	case layers.ICMPv4TypeTimeExceeded:
		return TimeExceeded, 0
	case layers.ICMPv4TypeParameterProblem:
		return ParamProblem, 0
	}
	switch code {
	case layers.ICMPv4CodeNet, layers.ICMPv4CodeNetUnknown, layers.ICMPv4CodeNetTOS:
		return UnreachNet, 0
	case layers.ICMPv4CodeHost, layers.ICMPv4CodeHostUnknown, layers.ICMPv4CodeHostTOS:
		return UnreachHost, 0
	case layers.ICMPv4CodeProtocol:
		return UnreachProto, 0
	case layers.ICMPv4CodePort:
		return UnreachPort, 0
	case layers.ICMPv4CodeFragmentationNeeded:
		return FragNeeded, info & 0xffff
	case layers.ICMPv4CodeNetAdminProhibited, layers.ICMPv4CodeHostAdminProhibited,
		layers.ICMPv4CodeCommAdminProhibited:
		return UnreachAdmin, 0
	}
	return UnreachOther, 0
}

func icmp6Kind(typ, code uint8, info uint32) (ICMPErrorKind, uint32) {
	switch typ {
	case layers.ICMPv6TypePacketTooBig:
		return FragNeeded, info
	case layers.ICMPv6TypeTimeExceeded:
		return TimeExceeded, 0
	case layers.ICMPv6TypeParameterProblem:
		return ParamProblem, 0
	}
	switch code {
	case layers.ICMPv6CodeNoRouteToDst:
		return UnreachNet, 0
	case layers.ICMPv6CodeAddressUnreachable:
		return UnreachHost, 0
	case layers.ICMPv6CodePortUnreachable:
		return UnreachPort, 0
	case layers.ICMPv6CodeAdminProhibited, layers.ICMPv6CodeSrcAddressFailedPolicy,
		layers.ICMPv6CodeRejectRouteToDst:
		return UnreachAdmin, 0
	}
	return UnreachOther, 0
}
