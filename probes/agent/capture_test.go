package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/netsleuth/netsleuth/probes/capture"
)

// TestCaptureMainOnLoopback runs the agent's capture verb on lo, connects
// to a closed loopback port while it runs, closes stdin and checks the pcap
// shows the refused connection and the last stderr line reports the stats.
// Traffic goes to 127.0.0.1 only.
func TestCaptureMainOnLoopback(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("SKIPPED: a live capture needs Linux and root (AF_PACKET); this run is neither")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // a port nothing listens on: the SYN is answered by RST
	req := CaptureRequest{Iface: "lo", Filter: capture.FilterSpec{Hosts: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Ports: []uint16{uint16(port)}},
		MaxPackets: 100, DurationMs: 10000}
	line, _ := json.Marshal(req)
	pr, pw := io.Pipe()
	var pcap, errb bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- CaptureMain(context.Background(), pr, &pcap, &errb) }()
	if _, err := pw.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the socket and filter are in place once the header is out
	for i := 0; i < 3; i++ {
		if c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
			c.Close()
		}
	}
	time.Sleep(200 * time.Millisecond)
	pw.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("CaptureMain: %v (%s)", err, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the capture did not stop when stdin closed")
	}
	var d CaptureDone
	if err := json.Unmarshal([]byte(strings.TrimSpace(errb.String())), &d); err != nil || d.Iface != "lo" || d.Stats.Stopped != "cancelled" {
		t.Fatalf("done line %q: %+v %v", errb.String(), d, err)
	}
	tb, err := capture.Analyze(&pcap, "lo", capture.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, r := range capture.ClassifyTable(tb, capture.Context{}) {
		if r.Findings[0].Verdict == capture.TCPRefused {
			refused++
		}
	}
	if refused != 3 {
		t.Errorf("want 3 refused flows, got %d of %d flows (%d packets)", refused, tb.Len(), d.Stats.Packets)
	}
}

func TestCaptureMainRefusesBadRequests(t *testing.T) {
	for req, want := range map[string]string{
		"not json\n":                                                         "is not one JSON capture request",
		`{"iface":"lo","cmd":"sh"}` + "\n":                                   `unknown field "cmd"`,
		`{"iface":"lo"} {"iface":"eth0"}` + "\n":                             "data after its JSON object",
		strings.Repeat(" ", maxCaptureRequest+10) + "{}":                     "longer than 65536 bytes",
		`{"filter":{}}` + "\n":                                               "must name its interface exactly one way",
		`{"iface":"lo","routeTo":"10.0.0.1"}` + "\n":                         "must name its interface exactly one way",
		`{"iface":"../../etc/passwd"}` + "\n":                                `interface name "../../etc/passwd" is not one the kernel takes`,
		`{"iface":"averyveryverylongname"}` + "\n":                           "is not one the kernel takes",
		`{"iface":"eth0 -w /tmp/x"}` + "\n":                                  "is not one the kernel takes",
		`{"ifIndex":-3}` + "\n":                                              "interface index -3 is negative",
		`{"routeTo":"not-an-ip"}` + "\n":                                     `routeTo "not-an-ip" is not an IP address`,
		`{"carrying":"10.0.0.1/24"}` + "\n":                                  `carrying "10.0.0.1/24" is not an IP address`,
		`{"iface":"lo","snapLen":-1}` + "\n":                                 "snapLen -1 is out of range",
		`{"iface":"lo","maxPackets":-5}` + "\n":                              "maxPackets -5 is out of range",
		`{"iface":"lo","maxBytes":99999999999999}` + "\n":                    "maxBytes 99999999999999 is out of range",
		`{"iface":"lo","durationMs":86400000}` + "\n":                        "durationMs 86400000 is out of range; pass 0 (the default) to 3600000 (1h0m0s)",
		`{"iface":"lo","filter":{"Ports":[53],"Protocols":["icmp"]}}` + "\n": "the capture filter: filter ports need protocol tcp or udp",
		`{"iface":"lo","filter":{"Protocols":["sctp"]}}` + "\n":              `filter protocol "sctp" is not tcp, udp, icmp or icmp6`,
		`{"iface":"lo","filter":{"Ports":[70000]}}` + "\n":                   "is not one JSON capture request",
		`{"iface":"nsl-no-such0"}` + "\n":                                    "here to capture on",
		`{"ifIndex":999999}` + "\n":                                          "no network interface with index 999999",
		`{"carrying":"203.0.113.77"}` + "\n":                                 "no interface on this node holds 203.0.113.77",
	} {
		var out, errb bytes.Buffer
		err := CaptureMain(context.Background(), strings.NewReader(req), &out, &errb)
		var done CaptureDone
		if jerr := json.Unmarshal(errb.Bytes(), &done); err == nil || jerr != nil || !strings.Contains(done.Error, want) {
			t.Errorf("request %.60q: err %v, stderr %q, want %q", req, err, errb.String(), want)
		}
		if strings.Count(errb.String(), "\n") != 1 || strings.Contains(done.Error, "\n") {
			t.Errorf("request %.60q: stderr is not one line: %q", req, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("request %.60q: a refused capture wrote %d bytes of pcap", req, out.Len())
		}
	}
}

func TestValidIfaceName(t *testing.T) {
	for name, ok := range map[string]bool{"eth0": true, "veth1a2b3c4d": true, "nsl-br0": true, "lo": true, "a23456789012345": true,
		"": false, ".": false, "..": false, "a/b": false, "eth0:1": false, "eth 0": false, "a234567890123456": false, "x\x00": false} {
		if ValidIfaceName(name) != ok {
			t.Errorf("ValidIfaceName(%q) = %v, want %v", name, !ok, ok)
		}
	}
}
