//go:build linux

package capture_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsleuth/netsleuth/probes/capture"
)

// needRoot skips, loudly, a test that opens packet sockets or namespaces.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED, NOT TESTED: live capture needs root (AF_PACKET sockets, network namespaces)")
	}
}

func TestCaptureRejectsUnboundedOptions(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		opts capture.Options
		want string
	}{
		{capture.Options{Iface: "lo", MaxPackets: 10}, "capture needs a duration above 0"},
		{capture.Options{Iface: "lo", Duration: time.Second}, "capture needs a packet bound above 0"},
		{capture.Options{Iface: "lo", Duration: 2 * time.Hour, MaxPackets: 1}, "longer than the 1h0m0s allowed"},
		{capture.Options{Duration: time.Second, MaxPackets: 1}, "capture needs an interface name"},
		{capture.Options{Iface: "nsl-no-such0", Duration: time.Second, MaxPackets: 1},
			`there is no network interface "nsl-no-such0" here to capture on`},
	} {
		_, err := capture.Capture(ctx, c.opts, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.opts, err, c.want)
		}
	}
}

// udpListener is a UDP socket on loopback that the test sends to.
func udpListener(t *testing.T) *net.UDPConn {
	t.Helper()
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestCaptureLoopbackStopsAtPacketBound(t *testing.T) {
	needRoot(t)
	l := udpListener(t)
	port := uint16(l.LocalAddr().(*net.UDPAddr).Port)
	filter, err := capture.FilterSpec{Hosts: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Ports: []uint16{port}, Protocols: []string{"udp"}}.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	var pcap bytes.Buffer
	done := make(chan struct{})
	var stats capture.Stats
	var capErr error
	go func() {
		defer close(done)
		stats, capErr = capture.Capture(context.Background(), capture.Options{Iface: "lo", Filter: filter,
			MaxPackets: 5, Duration: 10 * time.Second}, &pcap)
	}()
	sendUntil(t, done, "127.0.0.1", port)
	if capErr != nil {
		t.Fatal(capErr)
	}
	if stats.Packets != 5 || stats.Stopped != "packets" || stats.Bytes != int64(pcap.Len()) {
		t.Fatalf("stats %+v, pcap %d bytes", stats, pcap.Len())
	}
	tb, err := capture.Analyze(&pcap, "lo.pcap", capture.ReadOptions{Iface: "lo"})
	if err != nil {
		t.Fatal(err)
	}
	f := only(t, tb)
	if f.Fwd.Packets != 5 || f.Server().Port() != port || f.Iface != "lo" {
		t.Errorf("flow %v: %d packets to %v", f.Key(), f.Fwd.Packets, f.Server())
	}
	// Each datagram once: loopback's outgoing copies are dropped.
	if f.Fwd.Payload != 5*uint64(len("datagram-0000")) {
		t.Errorf("payload %d bytes: duplicates or other traffic", f.Fwd.Payload)
	}
}

// sendUntil sends numbered datagrams to addr:port every 10 ms until done
// is closed (at most 500).
func sendUntil(t *testing.T, done chan struct{}, addr string, port uint16) {
	t.Helper()
	c, err := net.Dial("udp", net.JoinHostPort(addr, fmt.Sprint(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 500 {
		select {
		case <-done:
			return
		case <-time.After(10 * time.Millisecond):
		}
		_, _ = fmt.Fprintf(c, "datagram-%04d", i)
	}
	<-done
}

func TestCaptureStopsAtDuration(t *testing.T) {
	needRoot(t)
	filter, err := capture.FilterSpec{Hosts: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Ports: []uint16{9}, Protocols: []string{"tcp"}}.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var pcap bytes.Buffer
	stats, err := capture.Capture(context.Background(), capture.Options{Iface: "lo", Filter: filter,
		MaxPackets: 100, Duration: 300 * time.Millisecond}, &pcap)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 3*time.Second || stats.Stopped != "duration" {
		t.Errorf("stopped after %v: %+v", el, stats)
	}
	if stats.Packets != 0 || pcap.Len() != 24 {
		t.Errorf("stats %+v, %d bytes", stats, pcap.Len())
	}
}

func TestCaptureStopsAtByteBound(t *testing.T) {
	needRoot(t)
	l := udpListener(t)
	port := uint16(l.LocalAddr().(*net.UDPAddr).Port)
	filter, _ := capture.FilterSpec{Ports: []uint16{port}, Protocols: []string{"udp"}}.Assemble()
	var pcap bytes.Buffer
	done := make(chan struct{})
	var stats capture.Stats
	var capErr error
	go func() {
		defer close(done)
		// 24 + 2 records of 16 + 55 bytes (14+20+8+13) fit in 200; a third does not.
		stats, capErr = capture.Capture(context.Background(), capture.Options{Iface: "lo", Filter: filter,
			MaxPackets: 1000, MaxBytes: 200, Duration: 10 * time.Second}, &pcap)
	}()
	sendUntil(t, done, "127.0.0.1", port)
	if capErr != nil {
		t.Fatal(capErr)
	}
	if stats.Packets != 2 || stats.Stopped != "bytes" || stats.DroppedByBound < 1 || pcap.Len() > 200 {
		t.Errorf("stats %+v, %d bytes", stats, pcap.Len())
	}
}

// netns is a network namespace the test made, deleted at cleanup.
type netns string

func newNetns(t *testing.T, tag string) netns {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := netns("nsltest-" + tag + "-" + hex.EncodeToString(b))
	run(t, "ip", "netns", "add", string(name))
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", string(name)).Run() })
	return name
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs fn on a thread moved into the namespace; sockets fn opens
// stay there.
func inNetns(t *testing.T, ns netns, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + string(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread() // else the thread ends with the goroutine
		}
	}()
	fn()
}

// TestCaptureVethSeesPortUnreachable captures on one end of a veth pair
// between two namespaces the test makes (addresses from TEST-NET-1, which
// exist only inside them) while the other end sends UDP to a closed port:
// the capture holds the datagrams and the ICMP port unreachable replies,
// and the flow reads "ICMP port unreachable from 192.0.2.1".
func TestCaptureVethSeesPortUnreachable(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIPPED, NOT TESTED: the ip command (iproute2) is missing")
	}
	a, b := newNetns(t, "a"), newNetns(t, "b")
	run(t, "ip", "-n", string(a), "link", "add", "nsl-a", "type", "veth", "peer", "name", "nsl-b", "netns", string(b))
	run(t, "ip", "-n", string(a), "addr", "add", "192.0.2.1/30", "dev", "nsl-a")
	run(t, "ip", "-n", string(b), "addr", "add", "192.0.2.2/30", "dev", "nsl-b")
	run(t, "ip", "-n", string(a), "link", "set", "nsl-a", "up")
	run(t, "ip", "-n", string(b), "link", "set", "nsl-b", "up")
	filter, err := capture.FilterSpec{Hosts: []netip.Addr{netip.MustParseAddr("192.0.2.2")},
		Ports: []uint16{9999}, Protocols: []string{"udp"}}.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	sender := exec.Command("ip", "netns", "exec", string(b), "bash", "-c",
		"for i in $(seq 1 100); do echo probe-$i > /dev/udp/192.0.2.1/9999; sleep 0.02; done")
	var pcap bytes.Buffer
	var stats capture.Stats
	inNetns(t, a, func() {
		if err := sender.Start(); err != nil {
			t.Fatal(err)
		}
		stats, err = capture.Capture(context.Background(), capture.Options{Iface: "nsl-a", Filter: filter,
			MaxPackets: 6, Duration: 5 * time.Second}, &pcap)
	})
	_ = sender.Process.Kill()
	_ = sender.Wait()
	if err != nil {
		t.Fatal(err)
	}
	tb, err := capture.Analyze(&pcap, "nsl-a.pcap", capture.ReadOptions{Iface: "nsl-a"})
	if err != nil {
		t.Fatal(err)
	}
	var f *capture.Flow
	for _, g := range tb.Flows() {
		if g.Proto() == capture.ProtoUDP {
			f = g
		}
	}
	if f == nil || f.ICMP == nil {
		t.Fatalf("stats %+v: no UDP flow with an ICMP error among %d flows", stats, tb.Len())
	}
	if got := capture.Classify(f); got.Verdict != capture.ICMPUnreachable || got.Sentence != "ICMP port unreachable from 192.0.2.1"+times(f.ICMP.Count) {
		t.Errorf("verdict %v %q", got.Verdict, got.Sentence)
	}
}

func times(n int) string {
	if n == 1 {
		return ""
	}
	return fmt.Sprintf(" (%d times)", n)
}
