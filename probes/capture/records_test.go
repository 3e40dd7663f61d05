package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// frames are a few Ethernet frames of different lengths.
func frames() [][]byte {
	var out [][]byte
	for i, n := range []int{60, 1514, 14, 97, 400, 9000} {
		f := make([]byte, n)
		for j := range f {
			f[j] = byte(i + j)
		}
		out = append(out, f)
	}
	return out
}

var recTimes = []time.Time{time.Unix(1700000000, 123456789), time.Unix(1700000001, 5000), time.Unix(0, 0),
	time.Unix(1<<31+7, 999999999), time.Unix(1700000002, 1), time.Unix(1700000003, 500000000)}

// readAll reads every record with the record reader.
func readAll(t *testing.T, data []byte, bufSize int) []record {
	t.Helper()
	r := &recordReader{buf: make([]byte, bufSize)}
	if err := r.open(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var out []record
	for {
		var rec record
		err := r.next(&rec)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		rec.data = bytes.Clone(rec.data)
		out = append(out, rec)
	}
}

func checkRecords(t *testing.T, got []record, want []gopacket.CaptureInfo, links []layers.LinkType, prec time.Duration) {
	t.Helper()
	fs := frames()
	if len(got) != len(fs) {
		t.Fatalf("%d records, want %d", len(got), len(fs))
	}
	for i, rec := range got {
		w := want[i]
		if !bytes.Equal(rec.data, fs[i][:w.CaptureLength]) || rec.wire != w.Length || rec.link != links[i] ||
			rec.ts != w.Timestamp.Truncate(prec).UnixNano() {
			t.Errorf("record %d: %d bytes, wire %d, link %v, ts %d; want %d bytes, wire %d, link %v, ts %d",
				i, len(rec.data), rec.wire, rec.link, rec.ts, w.CaptureLength, w.Length, links[i], w.Timestamp.Truncate(prec).UnixNano())
		}
	}
}

func infos(snap int) []gopacket.CaptureInfo {
	var out []gopacket.CaptureInfo
	for i, f := range frames() {
		c := min(len(f), snap)
		out = append(out, gopacket.CaptureInfo{Timestamp: recTimes[i], CaptureLength: c, Length: len(f) + i%2})
	}
	return out
}

// swapPcap rewrites a little-endian pcap as big-endian.
func swapPcap(b []byte) []byte {
	out := bytes.Clone(b)
	le, be := binary.LittleEndian, binary.BigEndian
	be.PutUint32(out, le.Uint32(b))
	for _, o := range []int{4, 6} {
		be.PutUint16(out[o:], le.Uint16(b[o:]))
	}
	for _, o := range []int{8, 12, 16, 20} {
		be.PutUint32(out[o:], le.Uint32(b[o:]))
	}
	for off := 24; off < len(b); {
		n := int(le.Uint32(b[off+8:]))
		for o := 0; o < 16; o += 4 {
			be.PutUint32(out[off+o:], le.Uint32(b[off+o:]))
		}
		off += 16 + n
	}
	return out
}

// TestRecordReaderFormats reads pcap (microseconds, nanoseconds, either
// byte order) and pcapng (two interfaces of two link types, decimal and
// binary clocks) with buffers smaller and larger than a record, and
// compares every record with what was written.
func TestRecordReaderFormats(t *testing.T) {
	fs := frames()
	eth := make([]layers.LinkType, len(fs))
	for i := range eth {
		eth[i] = layers.LinkTypeEthernet
	}
	write := func(nanos bool, snap int) []byte {
		var buf bytes.Buffer
		w := pcapgo.NewWriter(&buf)
		if nanos {
			w = pcapgo.NewWriterNanos(&buf)
		}
		if err := w.WriteFileHeader(uint32(snap), layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
		for i, ci := range infos(snap) {
			if err := w.WritePacket(ci, fs[i][:ci.CaptureLength]); err != nil {
				t.Fatal(err)
			}
		}
		return buf.Bytes()
	}
	micro, nano := write(false, 65535), write(true, 1000)
	for _, size := range []int{64, 4096, readBuffer} {
		checkRecords(t, readAll(t, micro, size), infos(65535), eth, time.Microsecond)
		checkRecords(t, readAll(t, swapPcap(micro), size), infos(65535), eth, time.Microsecond)
		checkRecords(t, readAll(t, nano, size), infos(1000), eth, time.Nanosecond)
	}

	var ng bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&ng, pcapgo.NgInterface{LinkType: layers.LinkTypeEthernet, TimestampResolution: 9},
		pcapgo.NgWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sll, err := w.AddInterface(pcapgo.NgInterface{LinkType: layers.LinkTypeLinuxSLL, TimestampResolution: 0x80 | 10})
	if err != nil {
		t.Fatal(err)
	}
	links := make([]layers.LinkType, len(fs))
	want := infos(1 << 20)
	for i, ci := range want {
		links[i] = layers.LinkTypeEthernet
		if i%2 == 1 {
			ci.InterfaceIndex, links[i] = sll, layers.LinkTypeLinuxSLL
			want[i].Timestamp = ci.Timestamp.Truncate(time.Second) // 2^-10 s: compare whole seconds below
		}
		if err := w.WritePacket(ci, fs[i][:ci.CaptureLength]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{64, readBuffer} {
		got := readAll(t, ng.Bytes(), size)
		for i := range got {
			if i%2 == 1 {
				got[i].ts -= got[i].ts % 1e9
			}
		}
		checkRecords(t, got, want, links, time.Nanosecond)
	}
}
