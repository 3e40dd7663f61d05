package cmd

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/probes/capture/capturetest"
)

// writePcap writes a capture of a refused connection and an answered SYN.
func writePcap(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	p, err := capturetest.NewPcap(&buf)
	if err != nil {
		t.Fatal(err)
	}
	b := capturetest.NewBuilder()
	cli, srv := netip.MustParseAddrPort("10.244.0.7:40000"), netip.MustParseAddrPort("10.244.1.9:81")
	for _, fr := range [][]byte{b.TCP(cli, srv, 0x02, 1, 0, nil), b.TCP(srv, cli, 0x14, 0, 2, nil)} { // SYN, RST|ACK
		if err := p.Write(fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "refused.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCaptureReadClassifies(t *testing.T) {
	path := writePcap(t)
	r := run(t, "netsleuth", "capture", "--read", path, "-o", "json")
	if r.code != ExitFailing {
		t.Fatalf("exit %d, want 1 for a refused connection: %s", r.code, r.errOut)
	}
	var out struct {
		Flows []flowJSON `json:"flows"`
	}
	if err := json.Unmarshal([]byte(r.out), &out); err != nil {
		t.Fatal(err, r.out)
	}
	if len(out.Flows) != 1 || out.Flows[0].Verdicts[0] != "tcp-refused" || out.Flows[0].PacketsOut != 1 || out.Flows[0].PacketsIn != 1 {
		t.Errorf("flows %+v", out.Flows)
	}
	text := run(t, "netsleuth", "capture", "--read", path)
	if !strings.Contains(text.out, "what the flows show:") || !strings.Contains(text.out, "FAIL") {
		t.Errorf("text: %s", text.out)
	}
}

func TestCaptureBadInput(t *testing.T) {
	path := writePcap(t)
	raw, _ := os.ReadFile(path)
	trunc := filepath.Join(t.TempDir(), "trunc.pcap")
	_ = os.WriteFile(trunc, raw[:len(raw)-10], 0o644)
	notpcap := filepath.Join(t.TempDir(), "notes.txt")
	_ = os.WriteFile(notpcap, []byte("hello, this is not a capture file at all"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"capture", "--read", trunc}, "is truncated after packet 1"},
		{[]string{"capture", "--read", notpcap}, "notes.txt"},
		{[]string{"capture", "--read", filepath.Join(t.TempDir(), "absent.pcap")}, "cannot read capture"},
		{[]string{"capture"}, "capture needs --pod namespace/name"},
		{[]string{"capture", "--pod", "a/b/c"}, `--pod "a/b/c": want namespace/name`},
		{[]string{"capture", "--pod", "shop/web", "--peer", "10.0.0.x"}, `--peer "10.0.0.x" is not an IP or IP:port`},
		{[]string{"capture", "--pod", "shop/web", "--peer", "10.0.0.1:99999"}, `has port "99999"`},
		{[]string{"capture", "--pod", "shop/web", "--duration", "0s"}, "--duration must be above 0"},
		{[]string{"capture", "--pod", "shop/web", "--count", "0"}, "--count must be at least 1"},
		{[]string{"capture", "--pod", "shop/web", "--count", "20000000"}, "at most 10000000 (got 20000000)"},
		{[]string{"capture", "--pod", "shop/web", "--max-bytes", "100"}, "--max-bytes must be at least 1024"},
		{[]string{"capture", "--pod", "shop/web", "--iface", "../../etc"}, `--iface "../../etc": want pod, bridge, uplink or an interface name`},
		{[]string{"capture", "--pod", "shop/web", "--iface", "a-very-long-interface-name"}, `want pod, bridge, uplink or an interface name`},
		{[]string{"capture", "--pod", "shop/web", "-o", "yaml"}, "-o must be text or json"},
	}
	for _, tc := range cases {
		wantUsage(t, run(t, "netsleuth", tc.args...), tc.want)
	}
}
