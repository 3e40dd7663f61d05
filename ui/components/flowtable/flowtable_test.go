package flowtable

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/probes/capture"
	ct "github.com/netsleuth/netsleuth/probes/capture/capturetest"
	"github.com/netsleuth/netsleuth/ui/keys"
	"github.com/netsleuth/netsleuth/ui/theme"
)

var (
	pod     = netip.MustParseAddrPort("10.244.0.5:40000")
	target  = netip.MustParseAddrPort("192.168.2.10:80")
	svc     = netip.MustParseAddrPort("10.96.0.20:8080")
	kubeDNS = netip.MustParseAddrPort("10.96.0.10:53")
)

// labPcap writes the uplink capture of the snat fault: the pod's SYNs to
// the external target leave untranslated and go unanswered, a connection
// to a Service is refused, one DNS query is answered, and extra connections
// from further pods (n of them) are established.
func labPcap(t testing.TB, n int) string {
	b := ct.NewBuilder()
	frames := [][]byte{b.TCP(pod, target, ct.SYN, 1000, 0, nil)}
	q := ct.Query(7, "kubernetes.default.svc.cluster.local.", 1)
	frames = append(frames, b.DNS(netip.MustParseAddrPort("10.244.0.5:41000"), kubeDNS, q),
		b.DNS(kubeDNS, netip.MustParseAddrPort("10.244.0.5:41000"), ct.Response(q, 0, "10.96.0.1")),
		b.TCP(pod, target, ct.SYN, 1000, 0, nil))
	c := netip.MustParseAddrPort("10.244.0.5:40100")
	frames = append(frames, b.TCP(c, svc, ct.SYN, 5, 0, nil), b.TCP(svc, c, ct.RST|ct.ACK, 0, 6, nil), b.TCP(pod, target, ct.SYN, 1000, 0, nil))
	for i := range n {
		cl := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 244, 1, byte(i % 250)}), uint16(30000+i))
		s := netip.MustParseAddrPort("10.96.0.30:443")
		frames = append(frames, b.TCP(cl, s, ct.SYN, 1, 0, nil), b.TCP(s, cl, ct.SYN|ct.ACK, 9, 2, nil),
			b.TCP(cl, s, ct.ACK|ct.PSH, 2, 10, []byte("hello")))
	}
	path := filepath.Join(t.TempDir(), "uplink.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ct.WriteFrames(f, frames...); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	return path
}

var labCtx = capture.Context{Uplink: true, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
	ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}}

func labRows(t testing.TB, n int) []Row {
	path := labPcap(t, n)
	tb, err := capture.AnalyzeFile(path, capture.ReadOptions{Iface: "nsl-node1/eth0"})
	if err != nil {
		t.Fatal(err)
	}
	return RowsFromTable(tb, labCtx, path)
}

func sized(rows []Row, w, h int) Model {
	m := New()
	m.SetSize(w, h)
	m.SetRows(rows)
	return m
}

func press(t *testing.T, m Model, keys_ ...string) Model {
	t.Helper()
	km := keys.Default()
	for _, k := range keys_ {
		var msg tea.KeyPressMsg
		switch k {
		case "enter":
			msg = tea.KeyPressMsg{Code: tea.KeyEnter}
		case "esc":
			msg = tea.KeyPressMsg{Code: tea.KeyEscape}
		case "pgdown":
			msg = tea.KeyPressMsg{Code: tea.KeyPgDown}
		default:
			msg = tea.KeyPressMsg{Code: rune(k[0]), Text: k}
		}
		var cmd tea.Cmd
		var ok bool
		m, cmd, ok = m.Update(msg, km)
		if !ok {
			t.Fatalf("key %q not handled", k)
		}
		if cmd != nil {
			m, _, _ = m.Update(cmd(), km)
		}
	}
	return m
}

// TestRowsClassified: the untranslated SYNs are one flow whose
// classification is source-not-translated (not just tcp-no-reply).
func TestRowsClassified(t *testing.T) {
	rows := labRows(t, 2)
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 5", len(rows))
	}
	r := rows[0]
	if r.Class != "source-not-translated" || !r.Problem || r.Packets != 3 || r.Client != pod.String() || r.Server != target.String() {
		t.Errorf("first row = %+v", r)
	}
	if rows[2].Class != "tcp-refused" || rows[1].Class != "dns-answered" || rows[1].Problem {
		t.Errorf("rows = %+v", rows)
	}
}

func TestGolden80x24(t *testing.T) {
	m := sized(labRows(t, 30), 80, 24)
	golden.RequireEqual(t, m.View(theme.New(false, true)))
}

func TestGolden200x60(t *testing.T) {
	m := sized(labRows(t, 30), 200, 60)
	m = press(t, m, "s", "s", "s", "s", "s", "S") // packets, descending
	golden.RequireEqual(t, m.View(theme.New(false, true)))
}

func TestGoldenPackets80x24(t *testing.T) {
	m := press(t, sized(labRows(t, 30), 80, 24), "enter")
	golden.RequireEqual(t, m.View(theme.New(false, true)))
}

// TestSortCycles: s walks the columns and wraps, S turns the direction,
// the header marks the column, and the selected flow stays selected.
func TestSortCycles(t *testing.T) {
	m := sized(labRows(t, 5), 200, 20)
	m = press(t, m, "j", "j") // the refused connection
	sel, _ := m.Selected()
	for c := range numColumns {
		if got, _ := m.Sort(); got != c {
			t.Fatalf("after %d presses the sort is %v, want %v", c, got, c)
		}
		head := strings.Split(m.View(theme.New(false, true)), "\n")[0]
		if !strings.Contains(head, c.String()+"▲") {
			t.Errorf("header %q does not mark %v ascending", head, c)
		}
		if now, _ := m.Selected(); now.ID != sel.ID {
			t.Errorf("sorting by %v lost the selection: %s", c, now.ID)
		}
		m = press(t, m, "s")
	}
	m = press(t, m, "s", "s", "s", "s", "s", "S") // packets, descending
	rows := m.rows
	for i := 1; i < len(rows); i++ {
		if rows[i].Packets > rows[i-1].Packets {
			t.Fatalf("row %d has more packets than row %d sorted descending", i, i-1)
		}
	}
	if head := strings.Split(m.View(theme.New(false, true)), "\n")[0]; !strings.Contains(head, "PKTS▼") {
		t.Errorf("header %q does not mark PKTS descending", head)
	}
}

// TestLiveUpdateKeepsSelectionAndScroll: the capture grows while the user
// is scrolled into the table; the selected flow and its screen line stay.
func TestLiveUpdateKeepsSelectionAndScroll(t *testing.T) {
	full := labRows(t, 400)
	m := sized(full[:200], 80, 24)
	m = press(t, m, "pgdown", "pgdown", "j", "j", "j")
	sel, _ := m.Selected()
	line := m.cursor - m.top
	if m.top == 0 {
		t.Fatal("not scrolled")
	}
	// The next snapshot has more flows, some sorting before the selection.
	next := append([]Row{}, full...)
	for i := range next {
		next[i].Packets++
	}
	m = press(t, m, "s", "s", "s", "s", "s") // by packets: everything ties, IDs order
	line = m.cursor - m.top
	sel, _ = m.Selected()
	m.SetRows(next)
	now, _ := m.Selected()
	if now.ID != sel.ID || m.cursor-m.top != line {
		t.Errorf("after the update the selection is %s on line %d, want %s on line %d", now.ID, m.cursor-m.top, sel.ID, line)
	}
	if now.Packets != sel.Packets+1 {
		t.Errorf("the selected row was not updated: %d packets", now.Packets)
	}
	// A snapshot without the selected flow keeps the cursor in range.
	m.SetRows(next[:3])
	if _, ok := m.Selected(); !ok || m.cursor > 2 || m.top != 0 {
		t.Errorf("cursor %d top %d after the rows shrank to 3", m.cursor, m.top)
	}
}

// TestOpenPacketsAndBack: Enter lists the selected flow's packets from its
// pcap, Esc goes back to the table where it was; a stale listing is dropped.
func TestOpenPacketsAndBack(t *testing.T) {
	m := sized(labRows(t, 5), 80, 24)
	m = press(t, m, "j", "j", "enter")
	if m.Opened() == "" || len(m.packets) != 2 || m.packets[1].FromClient || !strings.HasPrefix(m.packets[1].Summary, "RST|ACK") {
		t.Fatalf("opened %q with packets %+v", m.Opened(), m.packets)
	}
	m, _, _ = m.Update(PacketsListedMsg{ID: "another flow", Err: fmt.Errorf("late")}, keys.Default())
	if m.pktErr != nil {
		t.Error("a listing for another flow replaced the packets")
	}
	if v := m.View(theme.New(false, true)); !strings.Contains(v, "RST|ACK") || !strings.Contains(v, "esc: back") {
		t.Errorf("packet view:\n%s", v)
	}
	m = press(t, m, "esc")
	if r, _ := m.Selected(); m.Opened() != "" || r.Class != "tcp-refused" {
		t.Errorf("after esc: opened %q, selected %+v", m.Opened(), r)
	}
	if _, _, ok := m.Update(tea.KeyPressMsg{Code: tea.KeyEscape}, keys.Default()); ok {
		t.Error("esc on the table was not left to the parent")
	}
}

// TestEvidenceRowsHaveNoPackets: rows from evidence open to a sentence
// saying why there are no packets, not to an empty list.
func TestEvidenceRowsHaveNoPackets(t *testing.T) {
	rows := RowsFromEvidence([]string{
		"capture on node nsl-node1, uplink eth0: 3 packet(s), 1 flow(s)",
		"  nsl-node1 eth0: source not translated: 10.244.0.5:40000 to 192.168.2.10:80 left eth0 with the pod's own address (no SNAT/masquerade)",
	})
	if len(rows) != 1 || rows[0].Class != "source-not-translated" {
		t.Fatalf("rows = %+v", rows)
	}
	m := press(t, sized(rows, 80, 10), "enter")
	if v := m.View(theme.New(false, true)); !strings.Contains(v, "no pcap was saved") {
		t.Errorf("view:\n%s", v)
	}
}

// BenchmarkView10000Flows is one frame of the table with 10,000 flows,
// scrolled into the middle.
func BenchmarkView10000Flows(b *testing.B) {
	m := sized(labRows(b, 10000), 200, 60)
	m.cursor = 5000
	m.clamp()
	th := theme.New(true, true)
	for b.Loop() {
		_ = m.View(th)
	}
}

// TestMergeEvidence: a pcap read without the pod CIDRs says tcp-no-reply;
// the probe's evidence says the source was not translated, and wins.
func TestMergeEvidence(t *testing.T) {
	path := labPcap(t, 0)
	tb, err := capture.AnalyzeFile(path, capture.ReadOptions{Iface: "nsl-node1/eth0"})
	if err != nil {
		t.Fatal(err)
	}
	rows := RowsFromTable(tb, capture.Context{Uplink: true}, path)
	if rows[0].Class != "tcp-no-reply" {
		t.Fatalf("without CIDRs the first row is %s", rows[0].Class)
	}
	ev := RowsFromEvidence([]string{
		"capture on node nsl-node1, uplink eth0: 7 packet(s), 3 flow(s)",
		"  nsl-node1 eth0: SYN with no reply (3 SYNs to 192.168.2.10:80, nothing back)",
		"  nsl-node1 eth0: source not translated: 10.244.0.5 to 192.168.2.10:80 left nsl-node1/eth0 with the pod's own address (no SNAT/masquerade)",
	})
	rows = Merge(rows, ev)
	if rows[0].Class != "source-not-translated" || rows[2].Class != "tcp-refused" {
		t.Errorf("merged rows: %s, %s", rows[0].Class, rows[2].Class)
	}
}
