package capture

import (
	"encoding/binary"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// tcpDNS reads a DNS message from a TCP segment to or from port 53: the
// 2-byte length prefix and the message must both be in this one segment
// (the first message of it is read; one split across segments is not).
func (t *Table) tcpDNS(f *Flow, payload []byte) {
	n := int(binary.BigEndian.Uint16(payload))
	if n < 12 || n > len(payload)-2 {
		return
	}
	if err := t.dec.dns.DecodeFromBytes(payload[2:2+n], gopacket.NilDecodeFeedback); err != nil {
		t.Stats.Malformed++
		return
	}
	t.dnsMessage(f, &t.dec.dns)
}

// dnsMessage records a decoded query or response on its flow.
func (t *Table) dnsMessage(f *Flow, m *layers.DNS) {
	if f.DNS == nil {
		f.DNS = t.dnss.alloc()
	}
	info := f.DNS
	if len(m.Questions) > 0 {
		info.Name = t.intern(m.Questions[0].Name)
		info.Type = m.Questions[0].Type
	}
	if !m.QR {
		info.Queries++
		info.addPending(m.ID)
		return
	}
	info.Responses++
	if info.removePending(m.ID) {
		info.Answered++
	}
	info.Rcode = m.ResponseCode
	info.Truncated = info.Truncated || m.TC
	info.AnswerCount = 0
	for i := range m.Answers {
		rr := &m.Answers[i]
		var a DNSAnswer
		switch rr.Type {
		case layers.DNSTypeA, layers.DNSTypeAAAA:
			ip, ok := netip.AddrFromSlice(rr.IP)
			if !ok {
				continue
			}
			a = DNSAnswer{Type: rr.Type, Addr: ip.Unmap()}
		case layers.DNSTypeCNAME:
			a = DNSAnswer{Type: rr.Type, Target: t.intern(rr.CNAME)}
		default:
			continue
		}
		if info.AnswerCount < MaxDNSAnswers {
			if info.answers == nil {
				info.answers = t.ans.alloc()
			}
			info.answers[info.AnswerCount] = a
		}
		info.AnswerCount++
	}
}

// addPending remembers a query ID until a response carries it; a query
// repeated with the same ID (a resolver's retry) counts once.
func (d *DNSInfo) addPending(id uint16) {
	free := -1
	for i := range maxPending {
		if d.pendingSet&(1<<i) == 0 {
			if free < 0 {
				free = i
			}
			continue
		}
		if d.pending[i] == id {
			return
		}
	}
	if free < 0 {
		d.overflow++
	} else {
		d.pending[free] = id
		d.pendingSet |= 1 << free
	}
	d.Unanswered++
}

// removePending forgets a query ID; false if no query carried it.
func (d *DNSInfo) removePending(id uint16) bool {
	for i := range maxPending {
		if d.pendingSet&(1<<i) != 0 && d.pending[i] == id {
			d.pendingSet &^= 1 << i
			d.Unanswered--
			return true
		}
	}
	if d.overflow > 0 {
		// The query may be one that did not fit; count it answered.
		d.overflow--
		d.Unanswered--
		return true
	}
	return false
}

// intern returns b as a string, the same string for the same name, so
// names repeated across packets are not copied again.
func (t *Table) intern(b []byte) string {
	if s, ok := t.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(t.names) < maxNames {
		t.names[s] = s
	}
	return s
}
