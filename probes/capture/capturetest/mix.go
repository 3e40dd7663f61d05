package capturetest

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Epoch is the timestamp of the first generated packet.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Pcap writes frames to a pcap stream (Ethernet, microsecond timestamps)
// one after the other, step apart, starting at Epoch.
type Pcap struct {
	bw   *bufio.Writer
	w    *pcapgo.Writer
	t    time.Time
	step time.Duration
	// Packets and Bytes count what was written.
	Packets int
	Bytes   int64
}

// NewPcap writes the file header to w; call Flush at the end.
func NewPcap(w io.Writer) (*Pcap, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	pw := pcapgo.NewWriter(bw)
	if err := pw.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	return &Pcap{bw: bw, w: pw, t: Epoch, step: 100 * time.Microsecond}, nil
}

// Write appends one frame, stamped step after the previous one.
func (p *Pcap) Write(frame []byte) error {
	ci := gopacket.CaptureInfo{Timestamp: p.t, CaptureLength: len(frame), Length: len(frame)}
	p.t = p.t.Add(p.step)
	p.Packets++
	p.Bytes += int64(len(frame))
	return p.w.WritePacket(ci, frame)
}

// Flush writes out what is buffered.
func (p *Pcap) Flush() error { return p.bw.Flush() }

// WriteFrames writes a whole pcap of frames to w.
func WriteFrames(w io.Writer, frames ...[]byte) error {
	p, err := NewPcap(w)
	if err != nil {
		return err
	}
	for _, f := range frames {
		if err := p.Write(f); err != nil {
			return err
		}
	}
	return p.Flush()
}

// MixOptions shape a generated capture.
type MixOptions struct {
	// Packets is how many frames to write (the last conversation may be cut short).
	Packets int
	// Seed makes the mix reproducible.
	Seed uint64
	// V6 is the share of conversations over IPv6, 0.2 when 0; -1 for none.
	V6 float64
}

// Mix is a generator of mixed traffic into a pcap.
type mix struct {
	b     *Builder
	p     *Pcap
	rnd   *rand.Rand
	opts  MixOptions
	port  uint16
	data  []byte
	err   error
	limit int // stop when p.Packets reaches it
}

// scenario emits one conversation.
type scenario struct {
	weight int
	run    func(m *mix, c, s netip.Addr)
}

var scenarios = []scenario{
	{34, (*mix).tcpSession},
	{6, (*mix).tcpRefused},
	{4, (*mix).tcpNoReply},
	{5, (*mix).tcpReset},
	{18, (*mix).dnsAnswered},
	{5, (*mix).dnsNXDomain},
	{2, (*mix).dnsServfail},
	{3, (*mix).dnsNoAnswer},
	{2, (*mix).dnsTCP},
	{5, (*mix).udpExchange},
	{3, (*mix).udpNoReply},
	{6, (*mix).echo},
	{2, (*mix).echoUnanswered},
	{5, (*mix).unreachable},
}

// WriteMix writes opts.Packets frames of mixed traffic as a pcap to w and
// returns how many bytes of frames it wrote.
func WriteMix(w io.Writer, opts MixOptions) (int64, error) {
	p, err := NewPcap(w)
	if err != nil {
		return 0, err
	}
	if err := p.Mix(opts); err != nil {
		return p.Bytes, err
	}
	return p.Bytes, p.Flush()
}

// Mix appends opts.Packets frames of mixed traffic.
func (p *Pcap) Mix(opts MixOptions) error {
	if opts.V6 == 0 {
		opts.V6 = 0.2
	}
	m := &mix{b: NewBuilder(), p: p, rnd: rand.New(rand.NewPCG(opts.Seed, 0x6e736c)), opts: opts, port: 32768}
	m.limit = p.Packets + opts.Packets
	m.data = make([]byte, 1500)
	for i := range m.data {
		m.data[i] = byte(m.rnd.IntN(256))
	}
	total := 0
	for _, s := range scenarios {
		total += s.weight
	}
	for m.p.Packets < m.limit && m.err == nil {
		n := m.rnd.IntN(total)
		for _, s := range scenarios {
			if n -= s.weight; n < 0 {
				c, srv := m.hosts()
				s.run(m, c, srv)
				break
			}
		}
	}
	return m.err
}

// emit writes a frame unless the packet budget is spent.
func (m *mix) emit(frame []byte) {
	if m.err == nil && m.p.Packets < m.limit {
		m.err = m.p.Write(frame)
	}
}

// hosts picks a client (a pod) and a server address of one family.
func (m *mix) hosts() (netip.Addr, netip.Addr) {
	r := m.rnd
	if m.opts.V6 > 0 && r.Float64() < m.opts.V6 {
		c := netip.AddrFrom16([16]byte{0xfd, 0, 0x10, 0x24, 14: byte(r.IntN(8)), 15: byte(1 + r.IntN(200))})
		s := netip.AddrFrom16([16]byte{0xfd, 0, 0x10, 0x96, 14: byte(r.IntN(4)), 15: byte(1 + r.IntN(50))})
		return c, s
	}
	c := netip.AddrFrom4([4]byte{10, 244, byte(r.IntN(8)), byte(1 + r.IntN(200))})
	switch r.IntN(3) {
	case 0:
		return c, netip.AddrFrom4([4]byte{10, 96, 0, byte(1 + r.IntN(50))})
	case 1:
		return c, netip.AddrFrom4([4]byte{10, 244, byte(r.IntN(8)), byte(1 + r.IntN(200))})
	}
	return c, netip.AddrFrom4([4]byte{93, 184, byte(r.IntN(4)), byte(1 + r.IntN(250))})
}

// ephemeral returns the next client port.
func (m *mix) ephemeral() uint16 {
	m.port++
	if m.port < 32768 {
		m.port = 32768
	}
	return m.port
}

// size picks a payload length: mostly small, sometimes a full segment.
func (m *mix) size() int {
	switch r := m.rnd.IntN(20); {
	case r < 12:
		return 20 + m.rnd.IntN(120)
	case r < 19:
		return 150 + m.rnd.IntN(350)
	}
	return 1000 + m.rnd.IntN(448)
}

func (m *mix) servicePort() uint16 {
	return [...]uint16{80, 443, 8080, 5432, 6443, 9090}[m.rnd.IntN(6)]
}
