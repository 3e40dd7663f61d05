package capture_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/netsleuth/netsleuth/probes/capture"
	ct "github.com/netsleuth/netsleuth/probes/capture/capturetest"
)

// mixPcap is a pcap of n generated packets.
func mixPcap(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := ct.WriteMix(&buf, ct.MixOptions{Packets: n, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// toPcapng rewrites a pcap as pcapng.
func toPcapng(t testing.TB, pcap []byte) []byte {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(pcap))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := pcapgo.NewNgWriter(&out, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestReadFormats(t *testing.T) {
	pcap := mixPcap(t, 300)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(pcap)
	_ = zw.Close()
	want, err := capture.Analyze(bytes.NewReader(pcap), "mix.pcap", capture.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"mix.pcapng": toPcapng(t, pcap), "mix.pcap.gz": gz.Bytes()} {
		got, err := capture.Analyze(bytes.NewReader(data), name, capture.ReadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Stats != want.Stats || got.Len() != want.Len() {
			t.Errorf("%s: %+v %d flows, pcap %+v %d flows", name, got.Stats, got.Len(), want.Stats, want.Len())
		}
	}
	if want.Stats.Packets != 300 || want.Len() < 20 {
		t.Errorf("stats %+v, %d flows", want.Stats, want.Len())
	}
}

func TestReadBadInput(t *testing.T) {
	pcap := mixPcap(t, 50)
	ng := toPcapng(t, pcap)
	// A pcap cut in the middle of its 11th record: 24-byte header, then records.
	cut, off := 0, 24
	for range 10 {
		off += 16 + int(binary.LittleEndian.Uint32(pcap[off+8:]))
	}
	cut = off + 20
	userLink := append([]byte(nil), pcap[:24]...)
	binary.LittleEndian.PutUint32(userLink[20:], 147)
	cases := []struct {
		name, file string
		data       []byte
		want       string
		packets    uint64
	}{
		{"truncated pcap", "capture.pcap", pcap[:cut], "capture.pcap is truncated after packet 10: unexpected EOF", 10},
		{"truncated header", "capture.pcap", pcap[:20], "capture.pcap has a damaged pcap header: unexpected EOF", 0},
		{"truncated pcapng", "capture.pcapng", ng[:len(ng)-30], "capture.pcapng is truncated after packet 49: unexpected EOF", 49},
		{"not a pcap", "notes.txt", []byte("hello, this is text\n"), "notes.txt is not a pcap or pcapng file (it starts with 0x6c6c6568)", 0},
		{"empty", "empty.pcap", nil, "empty.pcap is too short to be a pcap or pcapng file (0 bytes)", 0},
		{"unknown link type", "usb.pcap", userLink, "usb.pcap has link type 147", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), c.file)
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			tb, err := capture.AnalyzeFile(path, capture.ReadOptions{})
			if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one sentence starting %q", err, c.want)
			}
			if tb != nil && tb.Stats.Packets != c.packets {
				t.Errorf("%d packets kept, want %d", tb.Stats.Packets, c.packets)
			}
		})
	}
	if _, err := capture.AnalyzeFile(filepath.Join(t.TempDir(), "missing.pcap"), capture.ReadOptions{}); err == nil ||
		!strings.Contains(err.Error(), "cannot read capture: open ") {
		t.Errorf("missing file: %v", err)
	}
}

func TestReadMaxPacketsAndCookedLinkType(t *testing.T) {
	tb, err := capture.Analyze(bytes.NewReader(mixPcap(t, 100)), "", capture.ReadOptions{MaxPackets: 10})
	if err != nil || tb.Stats.Packets != 10 || tb.Iface != "capture" {
		t.Fatalf("err %v, stats %+v, iface %q", err, tb.Stats, tb.Iface)
	}
	// A Linux cooked capture ("tcpdump -i any"): 16-byte SLL header, then IP.
	b := ct.NewBuilder()
	frame := b.TCP(pod, svc, ct.SYN, 1, 0, nil)
	sll := append([]byte{0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0x0a, 0, 0, 0x08, 0x00}, frame[14:]...)
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	_ = w.WriteFileHeader(65535, layers.LinkTypeLinuxSLL)
	_ = w.WritePacket(gopacket.CaptureInfo{Timestamp: ct.Epoch, CaptureLength: len(sll), Length: len(sll)}, sll)
	tb, err = capture.Analyze(&buf, "any.pcap", capture.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f := only(t, tb); f.Client() != pod || f.Fwd.SYNs != 1 {
		t.Errorf("flow %+v", f)
	}
}

// FuzzAnalyze feeds arbitrary bytes to the reader and decoder: they must
// return flows or a one-sentence error, never panic.
func FuzzAnalyze(f *testing.F) {
	pcap := mixPcap(f, 12)
	f.Add(pcap)
	f.Add(toPcapng(f, pcap))
	f.Add(pcap[:len(pcap)-7])
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := capture.Analyze(bytes.NewReader(data), "fuzz.pcap", capture.ReadOptions{MaxPackets: 10000})
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "fuzz.pcap ") || strings.Contains(msg, "\n") {
				t.Fatalf("error is not one sentence naming the file: %q", msg)
			}
		}
		for _, fl := range tb.Flows() {
			_ = capture.Classify(fl)
		}
		_ = tb.Conversations()
	})
}

// TestResetTableReadsAsNew: a table Reset and read again holds what a new
// table would: no flow, DNS or ICMP record keeps anything from before.
func TestResetTableReadsAsNew(t *testing.T) {
	first, second := mixPcap(t, 3000), func() []byte {
		var buf bytes.Buffer
		if _, err := ct.WriteMix(&buf, ct.MixOptions{Packets: 2000, Seed: 99}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}()
	reused := capture.NewTable("x")
	if _, err := reused.ReadCapture(bytes.NewReader(first), "first", 0); err != nil {
		t.Fatal(err)
	}
	reused.Reset()
	if _, err := reused.ReadCapture(bytes.NewReader(second), "second", 0); err != nil {
		t.Fatal(err)
	}
	fresh, err := capture.Analyze(bytes.NewReader(second), "x", capture.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := reused.Flows(), fresh.Flows()
	if len(a) != len(b) || reused.Stats != fresh.Stats {
		t.Fatalf("reused: %d flows %+v; fresh: %d flows %+v", len(a), reused.Stats, len(b), fresh.Stats)
	}
	for i := range a {
		if got, want := capture.Classify(a[i]), capture.Classify(b[i]); got != want || a[i].Fwd != b[i].Fwd || a[i].Rev != b[i].Rev {
			t.Fatalf("flow %d: reused %+v %v, fresh %+v %v", i, *a[i], got, *b[i], want)
		}
	}
}
