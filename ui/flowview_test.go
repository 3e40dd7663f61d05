package ui

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/model"
	ct "github.com/netsleuth/netsleuth/probes/capture/capturetest"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
)

// snatPcap writes the uplink capture of the snat fault (three untranslated
// SYNs to the external target) and n established connections of other
// pods, and returns the finding that cites it as the external probe does.
func snatPcap(t testing.TB, dir string, n int) model.Finding {
	b := ct.NewBuilder()
	pod, target := netip.MustParseAddrPort("10.244.0.5:40000"), netip.MustParseAddrPort("192.168.2.10:80")
	var frames [][]byte
	for range 3 {
		frames = append(frames, b.TCP(pod, target, ct.SYN, 1000, 0, nil))
	}
	for i := range n {
		cl := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 244, 1, byte(i % 250)}), uint16(30000+i))
		s := netip.MustParseAddrPort("10.96.0.30:443")
		frames = append(frames, b.TCP(cl, s, ct.SYN, 1, 0, nil), b.TCP(s, cl, ct.SYN|ct.ACK, 9, 2, nil))
	}
	path := filepath.Join(dir, fmt.Sprintf("run-external-nsl-node1-eth0-%d.pcap", n))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ct.WriteFrames(f, frames...); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	return model.Finding{ID: "external.pod-unreachable", Key: "external.pod-unreachable", Probe: "external", Status: model.StatusFail,
		Title: "pods on nsl-node1 cannot reach 192.168.2.10:80", Evidence: []string{
			fmt.Sprintf("capture on node nsl-node1, uplink eth0: %d packet(s), %d flow(s); pcap saved to %s (tshark -r or Wireshark)", len(frames), n+1, path),
			"  nsl-node1 eth0: SYN with no reply (3 SYNs to 192.168.2.10:80, nothing back)",
			"  nsl-node1 eth0: source not translated: 10.244.0.5 to 192.168.2.10:80 left nsl-node1/eth0 with the pod's own address (no SNAT/masquerade)",
		}}
}

func flowSession(t *testing.T, w, h, n int) (*session, string) {
	first, extra := uitest.Demo(t)
	s := newSession(t, w, h, first, extra)
	dir := t.TempDir()
	s.run(s.r.id, "external", []model.Finding{snatPcap(t, dir, n)}, time.Second)
	s.feed(s.key("F"))
	return s, dir
}

// TestFlowTableGolden80x24: F shows every capture's flows; the untranslated
// SYNs carry the probe's verdict, read from the pcap with their counts.
func TestFlowTableGolden80x24(t *testing.T) {
	s, _ := flowSession(t, 80, 24, 40)
	out := s.screen()
	if !strings.Contains(out, "source-not-translated") || !strings.Contains(out, "flow 1/41") {
		t.Fatalf("screen:\n%s", out)
	}
	golden.RequireEqual(t, out)
}

func TestFlowTableGolden200x60(t *testing.T) {
	s, _ := flowSession(t, 200, 60, 80)
	s.key("s")
	s.key("s")
	s.key("s")
	s.key("s")
	s.key("s")
	s.key("S")
	out := s.screen()
	if !strings.Contains(out, "PKTS▼") {
		t.Fatalf("screen:\n%s", out)
	}
	golden.RequireEqual(t, out)
}

// TestFlowTablePacketsAndBack: Enter opens the selected flow's packets, Esc
// goes back to the table, Esc again to the panes, with q still quitting.
func TestFlowTablePacketsAndBack(t *testing.T) {
	s, _ := flowSession(t, 80, 24, 3)
	s.feed(s.key("enter"))
	out := s.screen()
	if !strings.Contains(out, "packets of one flow") || strings.Count(out, "SYN seq=1000") != 3 {
		t.Fatalf("packet view:\n%s", out)
	}
	golden.RequireEqual(t, out)
	s.key("esc")
	if out := s.screen(); !strings.Contains(out, "flows of every capture (4;") {
		t.Fatalf("after esc:\n%s", out)
	}
	s.key("esc")
	if s.m.showFlows || !strings.Contains(s.screen(), "Root causes") {
		t.Fatalf("second esc did not close the flow table:\n%s", s.screen())
	}
	s.feed(s.key("F"))
	if cmd := s.key("q"); cmd == nil || s.m.phase != phaseCleaning {
		t.Error("q in the flow table did not quit")
	}
}

// TestFlowTableLiveRerun: a re-run brings a bigger capture while the user
// is scrolled into the table; the selected flow and its line stay, and a
// stale load (of the old captures) is dropped.
func TestFlowTableLiveRerun(t *testing.T) {
	s, dir := flowSession(t, 80, 24, 100)
	for range 3 {
		s.key("pgdown")
	}
	s.key("j")
	sel, _ := s.m.flowTab.Selected()
	line := cursorLine(s.screen())
	oldKey := s.m.flowsKey
	s.feed(s.key("r"))
	f := snatPcap(t, dir, 300)
	s.event("rerun1", "external", model.EventStarted, nil, "")
	cmd := s.send(eventReceivedMsg{runID: "rerun1", event: model.Event{RunID: "rerun1", Probe: "external", Type: model.EventFinding, Time: s.now, Finding: &f}})
	s.feed(cmd)
	if s.m.flowTab.Len() != 301 {
		t.Fatalf("after the re-run the table has %d flows, want 301", s.m.flowTab.Len())
	}
	now, _ := s.m.flowTab.Selected()
	if now.ID != sel.ID || cursorLine(s.screen()) != line {
		t.Errorf("selection moved: %s on line %d, was %s on line %d", now.ID, cursorLine(s.screen()), sel.ID, line)
	}
	s.send(flowsLoadedMsg{key: oldKey, rows: nil})
	if s.m.flowTab.Len() != 301 {
		t.Error("a stale load replaced the rows")
	}
}

// cursorLine is the screen line of the table's cursor, -1 for none.
func cursorLine(screen string) int {
	for i, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(l, "▸") {
			return i
		}
	}
	return -1
}
