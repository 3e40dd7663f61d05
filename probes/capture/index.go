package capture

import (
	"encoding/binary"
	"math/bits"
)

// flowIndex finds a flow from a packet's 5-tuple in either direction. It
// is an open-addressing hash table of 8-byte slots (the low 32 bits of the
// hash and the flow's slab index + 1), and compares candidates against the
// flow records themselves, so it stores no keys: a few MB for a million
// flows. The stored hash bits place every slot again when the table grows,
// without reading the flows.
// The hash is symmetric, so a packet and its reply hash alike without
// first ordering their endpoints.
type flowIndex struct {
	slots []uint64
	n     int
}

// initialSlots is the index's starting size (a power of two).
const initialSlots = 1 << 12

// endpointWord folds an endpoint into a word: the IPv4-mapped part of the
// address (or the IPv6 address folded) with the port, spread by an odd
// multiplier, so two endpoints' words can be added without their bits
// cancelling out the way XOR would.
func endpointWord(a *[16]byte, port uint16) uint64 {
	hi, lo := binary.LittleEndian.Uint64(a[:8]), binary.LittleEndian.Uint64(a[8:])
	return (lo ^ bits.RotateLeft64(hi, 29) ^ uint64(port)) * 0x9e3779b97f4a7c15
}

// flowHash is the same for (src, dst) and (dst, src): the sum of the
// endpoints' words, mixed once.
func flowHash(proto Proto, src *[16]byte, sport uint16, dst *[16]byte, dport uint16) uint64 {
	x := endpointWord(src, sport) + endpointWord(dst, dport) + uint64(proto)
	x ^= x >> 32
	x *= 0xd6e8feb86659fd93
	x ^= x >> 32
	return x
}

// matches reports whether f is the flow of a packet, and if so whether
// the packet came from its client.
func (f *Flow) matches(proto Proto, src *[16]byte, sport uint16, dst *[16]byte, dport uint16) (ok, fromClient bool) {
	if f.proto != proto {
		return false, false
	}
	if f.cliPort == sport && f.srvPort == dport && f.cli == *src && f.srv == *dst {
		return true, true
	}
	if f.cliPort == dport && f.srvPort == sport && f.cli == *dst && f.srv == *src {
		return true, false
	}
	return false, false
}

// find returns the slab index of a packet's flow and whether the packet
// came from its client, or -1 and the slot where the flow would go.
func (x *flowIndex) find(fs *slab[Flow], h uint64, proto Proto, src *[16]byte, sport uint16, dst *[16]byte, dport uint16) (idx, slot int, fromClient bool) {
	if x.slots == nil {
		x.slots = make([]uint64, initialSlots)
	}
	mask := uint64(len(x.slots) - 1)
	tag := h & 0xffffffff
	for i := h & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return -1, int(i), true
		}
		if s>>32 == tag {
			j := int(uint32(s)) - 1
			if ok, fwd := fs.at(j).matches(proto, src, sport, dst, dport); ok {
				return j, int(i), fwd
			}
		}
	}
}

// insert records slab index idx at slot (from find), growing the table
// when it is three quarters full.
func (x *flowIndex) insert(fs *slab[Flow], h uint64, slot, idx int) {
	x.slots[slot] = h<<32 | uint64(idx+1)
	x.n++
	if x.n*4 >= len(x.slots)*3 {
		x.grow()
	}
}

func (x *flowIndex) grow() {
	old := x.slots
	x.slots = make([]uint64, 2*len(old))
	mask := uint64(len(x.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := s >> 32 & mask
		for x.slots[i] != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = s
	}
}

func (x *flowIndex) reset() {
	clear(x.slots)
	x.n = 0
}
