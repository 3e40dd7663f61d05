package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/gopacket/gopacket/layers"
)

// Bounds of the record reader.
const (
	// maxPcapRecord is the longest pcap record accepted whatever the
	// file's snap length says (libpcap's MAXIMUM_SNAPLEN).
	maxPcapRecord = 262144
	// maxNgBlock is the longest pcapng block accepted.
	maxNgBlock = 16 << 20
	// maxNgInterfaces bounds the interfaces of one pcapng section.
	maxNgInterfaces = 1 << 10
)

// pcapng block types and options.
const (
	ngIDB        = 1
	ngOPB        = 2 // obsolete packet block
	ngSPB        = 3
	ngEPB        = 6
	ngSHB        = 0x0a0d0d0a
	ngBOM        = 0x1a2b3c4d
	ngOptTSResol = 9
	ngOptTSOff   = 14
)

// record is one packet of a capture: its captured bytes (a slice of the
// reader's buffer, valid until the next record), its length on the wire,
// its time in Unix nanoseconds and the link type of its interface.
type record struct {
	data []byte
	wire int
	ts   int64
	link layers.LinkType
}

// ngIface is one pcapng interface: its link type, snap length and clock.
type ngIface struct {
	link   layers.LinkType
	snap   int
	units  uint64 // timestamp units per second
	mult   int64  // nanoseconds per unit when that is a whole number, else 0
	offset int64  // seconds added to every timestamp (if_tsoffset)
}

// recordReader reads pcap and pcapng files (gzip-compressed pcap too)
// record by record out of one big buffer, refilled as it empties: a
// record's bytes are never copied, and reading one costs a bounds check
// and a few loads. The buffer grows only for a record longer than it.
type recordReader struct {
	r        io.Reader
	buf      []byte
	pos, end int
	eof      error // the read error that ended the input, once seen

	ng     bool
	big    bool  // big-endian numbers
	factor int64 // pcap: nanoseconds per timestamp fraction unit
	snap   int   // pcap: longest record accepted
	link   layers.LinkType
	ifaces []ngIface
}

// u16 and u32 read the file's byte order.
func (r *recordReader) u16(b []byte) uint16 {
	if r.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *recordReader) u32(b []byte) uint32 {
	if r.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// fill makes n bytes available at r.pos: io.EOF when the input ended
// exactly at r.pos, io.ErrUnexpectedEOF when it ended inside them. The
// buffer grows only as far as data comes in, so a damaged length does not
// allocate what it claims.
func (r *recordReader) fill(n int) error {
	if r.end-r.pos >= n {
		return nil
	}
	if r.pos+n > len(r.buf) {
		r.end = copy(r.buf, r.buf[r.pos:r.end])
		r.pos = 0
	}
	for r.end-r.pos < n {
		if r.eof != nil {
			if r.end == r.pos && r.eof == io.EOF {
				return io.EOF
			}
			if r.eof == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return r.eof
		}
		if r.end == len(r.buf) { // n is longer than the buffer
			nb := make([]byte, min(2*len(r.buf), n))
			r.end = copy(nb, r.buf[r.pos:r.end])
			r.buf, r.pos = nb, 0
		}
		m, err := r.r.Read(r.buf[r.end:])
		r.end += m
		if err != nil {
			r.eof = err
		}
	}
	return nil
}

// open starts reading src, keeping r's buffer (and interfaces' memory):
// it reads the file header (and, for pcapng, blocks up to the first
// interface), which says the link type the capture starts with. Its errors
// are phrases that follow the capture's name.
func (r *recordReader) open(src io.Reader) error {
	buf, ifaces := r.buf, r.ifaces[:0]
	if buf == nil {
		buf = make([]byte, readBuffer)
	}
	*r = recordReader{r: src, buf: buf, ifaces: ifaces}
	if err := r.fill(4); err != nil {
		if err != io.EOF && err != io.ErrUnexpectedEOF {
			return fmt.Errorf("cannot be read: %w", err)
		}
		return fmt.Errorf("is too short to be a pcap or pcapng file (%d bytes)", r.end)
	}
	if binary.LittleEndian.Uint16(r.buf) == magicGzip {
		zr, err := gzip.NewReader(io.MultiReader(bytes.NewReader(bytes.Clone(r.buf[:r.end])), src))
		if err != nil {
			return fmt.Errorf("is gzip-compressed but holds no readable pcap: %w", err)
		}
		r.r, r.pos, r.end, r.eof = zr, 0, 0, nil
		if err := r.pcapHeader(); err != nil {
			return fmt.Errorf("is gzip-compressed but holds no readable pcap: %w", err)
		}
		return nil
	}
	switch m := binary.LittleEndian.Uint32(r.buf); m {
	case magicPcapMicro, magicPcapNano, magicPcapMicroSwap, magicPcapNanoSwap:
		if err := r.pcapHeader(); err != nil {
			return fmt.Errorf("has a damaged pcap header: %w", err)
		}
	case magicPcapng:
		r.ng = true
		if err := r.ngStart(); err != nil {
			return fmt.Errorf("has a damaged pcapng header: %w", err)
		}
	default:
		return fmt.Errorf("is not a pcap or pcapng file (it starts with %#08x)", m)
	}
	return nil
}

// pcapHeader reads a pcap file header.
func (r *recordReader) pcapHeader() error {
	if err := r.fill(24); err != nil {
		return eof(err)
	}
	h := r.buf[r.pos : r.pos+24]
	switch binary.LittleEndian.Uint32(h) {
	case magicPcapMicro:
		r.factor = 1000
	case magicPcapNano:
		r.factor = 1
	case magicPcapMicroSwap:
		r.factor, r.big = 1000, true
	case magicPcapNanoSwap:
		r.factor, r.big = 1, true
	default:
		return fmt.Errorf("unknown magic number %#08x", binary.LittleEndian.Uint32(h))
	}
	if major := r.u16(h[4:]); major != 2 {
		return fmt.Errorf("unknown pcap version %d.%d", major, r.u16(h[6:]))
	}
	r.snap = min(max(int(r.u32(h[16:])), maxPcapRecord), maxNgBlock)
	r.link = layers.LinkType(r.u32(h[20:]))
	r.pos += 24
	return nil
}

// eof makes a clean end inside a header an unexpected one.
func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// next returns the next packet, io.EOF after the last one.
func (r *recordReader) next(rec *record) error {
	if r.ng {
		return r.ngNext(rec)
	}
	if err := r.fill(16); err != nil {
		return err
	}
	h := r.buf[r.pos : r.pos+16]
	var sec, frac, caplen, wire uint32
	if r.big {
		sec, frac = binary.BigEndian.Uint32(h), binary.BigEndian.Uint32(h[4:])
		caplen, wire = binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint32(h[12:])
	} else {
		sec, frac = binary.LittleEndian.Uint32(h), binary.LittleEndian.Uint32(h[4:])
		caplen, wire = binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:])
	}
	if int64(caplen) > int64(r.snap) {
		return fmt.Errorf("a record of %d bytes is longer than the snap length %d", caplen, r.snap)
	}
	n := int(caplen)
	if err := r.fill(16 + n); err != nil {
		return eof(err)
	}
	rec.data = r.buf[r.pos+16 : r.pos+16+n : r.pos+16+n]
	rec.wire = max(int(wire), n)
	rec.ts = int64(sec)*1e9 + int64(frac)*r.factor
	rec.link = r.link
	r.pos += 16 + n
	return nil
}

// ngBlock makes the next pcapng block available at r.pos and returns its
// type and total length; a section header sets the byte order first.
func (r *recordReader) ngBlock() (typ uint32, n int, err error) {
	if err := r.fill(12); err != nil {
		return 0, 0, err
	}
	h := r.buf[r.pos:]
	typ = binary.LittleEndian.Uint32(h)
	if typ == ngSHB {
		switch bom := binary.LittleEndian.Uint32(h[8:]); bom {
		case ngBOM:
			r.big = false
		case bits.ReverseBytes32(ngBOM):
			r.big = true
		default:
			return 0, 0, fmt.Errorf("a section header has byte-order magic %#08x", bom)
		}
	} else {
		typ = r.u32(h)
	}
	size := r.u32(h[4:])
	if size < 12 || size%4 != 0 || size > maxNgBlock {
		return 0, 0, fmt.Errorf("a block of type %d claims %d bytes", typ, size)
	}
	if err := r.fill(int(size)); err != nil {
		return 0, 0, eof(err)
	}
	return typ, int(size), nil
}

// ngStart reads the section header and the blocks up to the first
// interface, whose link type is the capture's.
func (r *recordReader) ngStart() error {
	typ, n, err := r.ngBlock()
	if err != nil {
		return eof(err)
	}
	if typ != ngSHB {
		return errors.New("it does not start with a section header")
	}
	r.pos += n
	for len(r.ifaces) == 0 {
		typ, n, err := r.ngBlock()
		if err != nil {
			return eof(err)
		}
		if err := r.ngMeta(typ, r.buf[r.pos:r.pos+n]); err != nil {
			return err
		}
		if typ == ngEPB || typ == ngSPB || typ == ngOPB {
			return errors.New("a packet comes before any interface")
		}
		r.pos += n
	}
	r.link = r.ifaces[0].link
	return nil
}

// ngMeta takes in a section header (which forgets the interfaces) or an
// interface description block.
func (r *recordReader) ngMeta(typ uint32, b []byte) error {
	switch typ {
	case ngSHB:
		r.ifaces = r.ifaces[:0]
	case ngIDB:
		if len(b) < 20 {
			return errors.New("an interface description block is too short")
		}
		if len(r.ifaces) == maxNgInterfaces {
			return fmt.Errorf("a section describes more than %d interfaces", maxNgInterfaces)
		}
		ifc := ngIface{link: layers.LinkType(r.u16(b[8:])), snap: int(r.u32(b[12:])), units: 1e6, mult: 1000}
		if err := r.ngOptions(&ifc, b[16:len(b)-4]); err != nil {
			return err
		}
		r.ifaces = append(r.ifaces, ifc)
	}
	return nil
}

// ngOptions reads an interface's clock options.
func (r *recordReader) ngOptions(ifc *ngIface, b []byte) error {
	for len(b) >= 4 {
		code, n := r.u16(b), int(r.u16(b[2:]))
		if code == 0 {
			break
		}
		if 4+n > len(b) {
			return errors.New("an interface option runs past its block")
		}
		v := b[4 : 4+n]
		switch {
		case code == ngOptTSResol && n >= 1:
			exp := uint64(v[0] & 0x7f)
			if v[0]&0x80 != 0 {
				if exp > 63 {
					return fmt.Errorf("an interface has timestamp resolution 2^-%d", exp)
				}
				ifc.units = 1 << exp
			} else {
				if exp > 19 {
					return fmt.Errorf("an interface has timestamp resolution 10^-%d", exp)
				}
				ifc.units = 1
				for range exp {
					ifc.units *= 10
				}
			}
			ifc.mult = 0
			if ifc.units <= 1e9 && 1e9%ifc.units == 0 {
				ifc.mult = int64(1e9 / ifc.units)
			}
		case code == ngOptTSOff && n >= 8:
			if r.big {
				ifc.offset = int64(binary.BigEndian.Uint64(v))
			} else {
				ifc.offset = int64(binary.LittleEndian.Uint64(v))
			}
		}
		b = b[min(len(b), 4+(n+3)&^3):]
	}
	return nil
}

// ngNext returns the next packet of a pcapng file.
func (r *recordReader) ngNext(rec *record) error {
	for {
		typ, n, err := r.ngBlock()
		if err != nil {
			return err
		}
		b := r.buf[r.pos : r.pos+n]
		r.pos += n
		switch typ {
		case ngEPB, ngOPB:
			return r.ngPacket(rec, typ, b)
		case ngSPB:
			if len(r.ifaces) == 0 || n < 16 {
				return errors.New("a simple packet block has no interface")
			}
			ifc := &r.ifaces[0]
			wire := int(r.u32(b[8:]))
			c := min(wire, n-16)
			if ifc.snap > 0 {
				c = min(c, ifc.snap)
			}
			*rec = record{data: b[12 : 12+c : 12+c], wire: wire, link: ifc.link}
			return nil
		default:
			if err := r.ngMeta(typ, b); err != nil {
				return err
			}
		}
	}
}

// ngPacket reads an enhanced (or obsolete) packet block.
func (r *recordReader) ngPacket(rec *record, typ uint32, b []byte) error {
	if len(b) < 32 {
		return errors.New("a packet block is too short")
	}
	id := int(r.u32(b[8:]))
	if typ == ngOPB {
		id = int(r.u16(b[8:]))
	}
	if id >= len(r.ifaces) {
		return fmt.Errorf("a packet names interface %d of %d", id, len(r.ifaces))
	}
	ifc := &r.ifaces[id]
	c, wire := int(r.u32(b[20:])), int(r.u32(b[24:]))
	if c > len(b)-32 {
		return fmt.Errorf("a packet of %d bytes runs past its block", c)
	}
	units := uint64(r.u32(b[12:]))<<32 | uint64(r.u32(b[16:]))
	sec, frac := units/ifc.units, units%ifc.units
	ns := int64(frac) * ifc.mult
	if ifc.mult == 0 {
		hi, lo := bits.Mul64(frac, 1e9)
		q, _ := bits.Div64(hi, lo, ifc.units)
		ns = int64(q)
	}
	*rec = record{data: b[28 : 28+c : 28+c], wire: max(wire, c), ts: (int64(sec)+ifc.offset)*1e9 + ns, link: ifc.link}
	return nil
}
