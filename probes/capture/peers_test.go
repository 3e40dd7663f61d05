package capture_test

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/netsleuth/netsleuth/probes/capture"
	ct "github.com/netsleuth/netsleuth/probes/capture/capturetest"
)

// needPeer returns the path of a peer tool (tcpdump, tshark). A missing
// peer fails the test, so a machine without it cannot pass silently;
// NETSLEUTH_SKIP_PEERS=1 turns that into a loud skip.
func needPeer(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " is not installed, so netsleuth cannot be compared with it: apt-get install -y tcpdump tshark"
	if os.Getenv("NETSLEUTH_SKIP_PEERS") == "1" {
		t.Skip("SKIPPED, NOT TESTED: " + msg + " (NETSLEUTH_SKIP_PEERS=1)")
	}
	t.Fatal(msg + " (or set NETSLEUTH_SKIP_PEERS=1 to skip this comparison)")
	return ""
}

// peerConv is one row of tshark's conversation table.
type peerConv struct {
	a, b              netip.Addr
	framesAB, bytesAB uint64
	framesBA, bytesBA uint64
}

// tsharkRow matches "A <-> B  framesBA bytesBA bytes  framesAB bytesAB bytes  total ...".
var tsharkRow = regexp.MustCompile(`^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+(\d+) bytes\s+(\d+)\s+(\d+) bytes\s+\d+\s+\d+ bytes`)

// tsharkConversations runs tshark's IPv4 and IPv6 conversation tables on
// a file and parses them.
func tsharkConversations(t *testing.T, tshark, path string) []peerConv {
	t.Helper()
	out, err := exec.Command(tshark, "-n", "-q", "-z", "conv,ip", "-z", "conv,ipv6", "-r", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	var convs []peerConv
	for _, line := range bytes.Split(out, []byte("\n")) {
		m := tsharkRow.FindSubmatch(line)
		if m == nil {
			if bytes.Contains(line, []byte("<->")) {
				t.Fatalf("unparsed tshark row %q", line)
			}
			continue
		}
		n := func(i int) uint64 { v, _ := strconv.ParseUint(string(m[i]), 10, 64); return v }
		convs = append(convs, peerConv{a: netip.MustParseAddr(string(m[1])), b: netip.MustParseAddr(string(m[2])),
			framesBA: n(3), bytesBA: n(4), framesAB: n(5), bytesAB: n(6)})
	}
	return convs
}

// TestConversationsMatchTshark compares netsleuth's per-address-pair
// packet and byte counts with tshark's "-z conv,ip" and "-z conv,ipv6" on
// a generated capture with IPv4 and IPv6, TCP, UDP, DNS, ICMP echo and
// errors, plus frames tshark must not count (ARP) or must count by address
// only (a non-first fragment, GRE), and an address talking to itself.
func TestConversationsMatchTshark(t *testing.T) {
	tshark := needPeer(t, "tshark")
	b := ct.NewBuilder()
	path := filepath.Join(t.TempDir(), "conv.pcap")
	writePcap(t, path, func(p *ct.Pcap) error {
		if err := p.Mix(ct.MixOptions{Packets: 400, Seed: 3, V6: 0.35}); err != nil {
			return err
		}
		for _, f := range [][]byte{
			b.ARP(pod.Addr(), svc.Addr()),
			b.IP(pod.Addr(), svc.Addr(), layers.IPProtocolTCP, 185, bytes.Repeat([]byte("f"), 60)),
			b.IP(pod.Addr(), netip.MustParseAddr("10.96.0.99"), layers.IPProtocolGRE, 0, []byte("gre")),
			b.DNS(pod6, netip.MustParseAddrPort("[fd00:10:96::a]:53"), ct.Query(4, "six.example.com", layers.DNSTypeAAAA)),
			b.TCP(netip.AddrPortFrom(pod.Addr(), 50000), netip.AddrPortFrom(pod.Addr(), 8080), ct.SYN, 1, 0, nil),
			b.TCP(netip.AddrPortFrom(pod.Addr(), 8080), netip.AddrPortFrom(pod.Addr(), 50000), ct.SYN|ct.ACK, 7, 2, nil),
		} {
			if err := p.Write(f); err != nil {
				return err
			}
		}
		return nil
	})
	tb, err := capture.AnalyzeFile(path, capture.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	compareConversations(t, tb.Conversations(), tsharkConversations(t, tshark, path))
}

func compareConversations(t *testing.T, ours []capture.Conversation, theirs []peerConv) {
	t.Helper()
	type pair struct{ a, b netip.Addr }
	want := map[pair]peerConv{}
	for _, c := range theirs {
		if c.b.Less(c.a) {
			c.a, c.b = c.b, c.a
			c.framesAB, c.framesBA, c.bytesAB, c.bytesBA = c.framesBA, c.framesAB, c.bytesBA, c.bytesAB
		}
		want[pair{c.a, c.b}] = c
	}
	if len(ours) != len(want) {
		t.Errorf("%d conversations, tshark has %d", len(ours), len(want))
	}
	v6 := 0
	for _, c := range ours {
		w, ok := want[pair{c.A, c.B}]
		if c.A.Is6() {
			v6++
		}
		switch {
		case !ok:
			t.Errorf("%v <-> %v: not in tshark's table", c.A, c.B)
		case c.PacketsAB != w.framesAB || c.PacketsBA != w.framesBA || c.BytesAB != w.bytesAB || c.BytesBA != w.bytesBA:
			t.Errorf("%v <-> %v: netsleuth %d/%d packets %d/%d bytes, tshark %d/%d packets %d/%d bytes", c.A, c.B,
				c.PacketsAB, c.PacketsBA, c.BytesAB, c.BytesBA, w.framesAB, w.framesBA, w.bytesAB, w.bytesBA)
		}
	}
	if v6 == 0 || len(ours) < 20 {
		t.Errorf("the capture should have many conversations, some IPv6: %d, %d IPv6", len(ours), v6)
	}
	t.Logf("%d conversations (%d IPv6) equal to tshark's", len(ours), v6)
}

// writePcap creates a pcap file and lets fill write its frames.
func writePcap(t *testing.T, path string, fill func(*ct.Pcap) error) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := ct.NewPcap(f)
	if err == nil {
		err = fill(p)
	}
	if err == nil {
		err = p.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
}
