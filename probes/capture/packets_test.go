package capture_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/probes/capture"
	ct "github.com/netsleuth/netsleuth/probes/capture/capturetest"
)

// TestPacketsOfOneFlow: a refused connection, an unrelated flow between
// its packets and an ICMP error about a third flow; the packet list of the
// refused one holds its two packets in order, direction and flags right.
func TestPacketsOfOneFlow(t *testing.T) {
	b := ct.NewBuilder()
	other := netip.MustParseAddrPort("10.96.0.30:9000")
	udp := b.UDP(pod, other, []byte("hello"))
	syn := b.TCP(pod, svc, ct.SYN, 100, 0, nil)
	path := filepath.Join(t.TempDir(), "c.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ct.WriteFrames(f, syn, udp, b.ICMPError(other.Addr(), pod.Addr(), 3, 3, 0, udp),
		b.TCP(svc, pod, ct.RST|ct.ACK, 0, 101, nil)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ps, err := capture.PacketsOf(path, "n1/eth0", key(capture.ProtoTCP, pod, svc), 0)
	if err != nil || len(ps) != 2 {
		t.Fatalf("PacketsOf = %+v, %v; want the SYN and the RST", ps, err)
	}
	if !ps[0].FromClient || ps[0].Summary != "SYN seq=100 len=0" || ps[1].FromClient || !strings.HasPrefix(ps[1].Summary, "RST|ACK ") {
		t.Errorf("packets = %+v", ps)
	}
	if ps[0].Iface != "n1/eth0" || ps[0].Length == 0 || !ps[1].Time.After(ps[0].Time) {
		t.Errorf("packets = %+v: interface, length or times wrong", ps)
	}
	us, err := capture.PacketsOf(path, "", key(capture.ProtoUDP, pod, other), 1)
	if err != nil || len(us) != 1 || us[0].Summary != "UDP len=5" {
		t.Fatalf("udp packets (max 1) = %+v, %v", us, err)
	}
	all, _ := capture.PacketsOf(path, "", key(capture.ProtoUDP, pod, other), 0)
	if len(all) != 2 || all[1].Summary != "icmp port error from 10.96.0.30" {
		t.Errorf("udp packets = %+v; want the datagram and the ICMP error about it", all)
	}
	if _, err := capture.PacketsOf(filepath.Join(t.TempDir(), "none.pcap"), "", key(capture.ProtoUDP, pod, other), 0); err == nil {
		t.Error("a missing file read without an error")
	}
}
