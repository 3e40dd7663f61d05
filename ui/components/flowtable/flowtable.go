// Package flowtable is the capture's flows as a live, sortable table with
// their classification, and a flow opened to its packets (termshark's
// conversation view is the model). Rows come from a decoded capture
// (RowsFromTable) or, when no pcap is at hand, from a finding's capture
// evidence (RowsFromEvidence). SetRows replaces the rows as a capture grows
// or a probe re-runs, keeping the selected flow and where it sits on screen.
// Reading a pcap is I/O: Enter returns the command that lists the packets,
// and PacketsListedMsg brings them back.
package flowtable

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/netsleuth/netsleuth/probes/capture"
	"github.com/netsleuth/netsleuth/ui/components/flows"
	"github.com/netsleuth/netsleuth/ui/keys"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// Row is one flow.
type Row struct {
	// ID identifies the flow across updates: where it was seen and its key.
	ID             string
	Iface          string // node/interface
	Proto          string
	Client, Server string
	Packets, Bytes uint64
	First, Last    time.Time
	Flags          string
	Class          string // the verdict's short ID
	Problem        bool
	What           string // the verdict's sentence
	// Pcap is the file the flow's packets are read from ("" without one);
	// Key finds them there.
	Pcap string
	Key  capture.Key
}

// RowsFromTable turns a decoded capture into rows, classified in ctx.
// pcap is the file the table was read from.
func RowsFromTable(t *capture.Table, ctx capture.Context, pcap string) []Row {
	res := capture.ClassifyTable(t, ctx)
	out := make([]Row, 0, len(res))
	for _, r := range res {
		f := r.Flow
		v := r.Findings[0]
		for _, fd := range r.Findings[1:] {
			if fd.Verdict.Problem() {
				v = fd // source-not-translated says more than tcp-no-reply
			}
		}
		k := f.Key()
		out = append(out, Row{ID: f.Iface + " " + k.String(), Iface: f.Iface, Proto: f.Proto().String(),
			Client: f.Client().String(), Server: f.Server().String(), Packets: f.Packets(), Bytes: f.Bytes(),
			First: f.First(), Last: f.Last(), Flags: (f.Fwd.Flags | f.Rev.Flags).String(),
			Class: v.Verdict.String(), Problem: v.Verdict.Problem(), What: v.Sentence, Pcap: pcap, Key: k})
	}
	return out
}

// RowsFromEvidence turns a finding's capture lines into rows: where, the
// classification and its sentence (no counts: the evidence has none).
func RowsFromEvidence(evidence []string) []Row {
	t := flows.Parse(evidence)
	out := make([]Row, 0, len(t.Flows))
	for i, f := range t.Flows {
		out = append(out, Row{ID: fmt.Sprintf("%s #%d", f.Where, i), Iface: f.Where, Class: f.Class, Problem: f.Problem(), What: f.What})
	}
	return out
}

// Column is a sortable column.
type Column int

// The columns, in the order s cycles through them.
const (
	ColFirst Column = iota
	ColIface
	ColProto
	ColClient
	ColServer
	ColPackets
	ColBytes
	ColDuration
	ColClass
	numColumns
)

var colNames = [numColumns]string{"FIRST", "WHERE", "PROTO", "CLIENT", "SERVER", "PKTS", "BYTES", "DUR", "CLASSIFICATION"}

// String is the column's header.
func (c Column) String() string { return colNames[c] }

// PacketsListedMsg carries the packets of the flow ID (or why not).
type PacketsListedMsg struct {
	ID      string
	Packets []capture.Packet
	Err     error
}

// maxPackets bounds the packets a flow lists.
const maxPackets = 5000

// Model is the table and, once a flow is opened, its packet list.
type Model struct {
	rows          []Row
	sort          Column
	desc          bool
	cursor, top   int
	width, height int

	open    string // ID of the opened flow, "" while the table shows
	openRow Row
	packets []capture.Packet
	loading bool
	pktErr  error
	pktTop  int
}

// New returns an empty table sorted by first-seen time.
func New() Model { return Model{} }

// SetSize sets the lines and cells the view fills.
func (m *Model) SetSize(w, h int) {
	m.width, m.height = w, h
	m.clamp()
}

// Len is the number of flows.
func (m Model) Len() int { return len(m.rows) }

// Sort is the sort column and direction.
func (m Model) Sort() (Column, bool) { return m.sort, m.desc }

// Selected is the flow under the cursor.
func (m Model) Selected() (Row, bool) {
	if m.cursor < len(m.rows) {
		return m.rows[m.cursor], true
	}
	return Row{}, false
}

// Opened is the ID of the flow whose packets show, "" for none.
func (m Model) Opened() string { return m.open }

// SetRows replaces the flows: the selected flow stays selected and on the
// same screen line, wherever the new rows put it.
func (m *Model) SetRows(rows []Row) {
	sel, had := m.Selected()
	line := m.cursor - m.top
	m.rows = rows
	m.sortRows()
	if had {
		if i := slices.IndexFunc(m.rows, func(r Row) bool { return r.ID == sel.ID }); i >= 0 {
			m.cursor = i
			m.top = i - line
		}
	}
	m.clamp()
}

func (m *Model) sortRows() {
	c, desc := m.sort, m.desc
	slices.SortStableFunc(m.rows, func(a, b Row) int {
		n := compare(c, a, b)
		if desc {
			n = -n
		}
		// Ties keep capture order, whichever the direction.
		return cmp.Or(n, a.First.Compare(b.First), cmp.Compare(a.ID, b.ID))
	})
}

func compare(c Column, a, b Row) int {
	switch c {
	case ColIface:
		return cmp.Compare(a.Iface, b.Iface)
	case ColProto:
		return cmp.Compare(a.Proto, b.Proto)
	case ColClient:
		return cmp.Compare(a.Client, b.Client)
	case ColServer:
		return cmp.Compare(a.Server, b.Server)
	case ColPackets:
		return cmp.Compare(a.Packets, b.Packets)
	case ColBytes:
		return cmp.Compare(a.Bytes, b.Bytes)
	case ColDuration:
		return cmp.Compare(a.Last.Sub(a.First), b.Last.Sub(b.First))
	case ColClass:
		return cmp.Or(-cmp.Compare(b2i(a.Problem), b2i(b.Problem)), cmp.Compare(a.Class, b.Class))
	}
	return a.First.Compare(b.First)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bodyLines is how many rows fit below the header and above the footer.
func (m Model) bodyLines() int { return max(1, m.height-2) }

func (m *Model) clamp() {
	n, h := len(m.rows), m.bodyLines()
	m.cursor = max(0, min(m.cursor, n-1))
	m.top = max(0, min(m.top, m.cursor, max(0, n-h)))
	if m.cursor >= m.top+h {
		m.top = m.cursor - h + 1
	}
	m.pktTop = max(0, min(m.pktTop, len(m.packets)-m.bodyLines()))
}

// Update moves, sorts (km.Sort cycles the column, km.Reverse turns the
// direction), opens and closes; handled is false for keys the
// table leaves to its parent (Esc on the table, q, ...).
func (m Model) Update(msg tea.Msg, km *keys.KeyMap) (Model, tea.Cmd, bool) {
	switch msg := msg.(type) {
	case PacketsListedMsg:
		if msg.ID == m.open {
			m.packets, m.pktErr, m.loading, m.pktTop = msg.Packets, msg.Err, false, 0
		}
		return m, nil, true
	case tea.KeyPressMsg:
		if m.open != "" {
			return m.packetKey(msg, km)
		}
		return m.tableKey(msg, km)
	}
	return m, nil, false
}

func (m Model) tableKey(k tea.KeyPressMsg, km *keys.KeyMap) (Model, tea.Cmd, bool) {
	h := m.bodyLines()
	switch {
	case key.Matches(k, km.Sort):
		m.sort = (m.sort + 1) % numColumns
		m.resort()
	case key.Matches(k, km.Reverse):
		m.desc = !m.desc
		m.resort()
	case key.Matches(k, km.Up):
		m.cursor--
	case key.Matches(k, km.Down):
		m.cursor++
	case key.Matches(k, km.PageUp):
		m.cursor, m.top = m.cursor-h, m.top-h
	case key.Matches(k, km.PageDown):
		m.cursor, m.top = m.cursor+h, m.top+h
	case key.Matches(k, km.HalfUp):
		m.cursor -= h / 2
	case key.Matches(k, km.HalfDown):
		m.cursor += h / 2
	case key.Matches(k, km.Top):
		m.cursor = 0
	case key.Matches(k, km.Bottom):
		m.cursor = len(m.rows) - 1
	case key.Matches(k, km.Open):
		return m.openSelected()
	default:
		return m, nil, false
	}
	m.clamp()
	return m, nil, true
}

// resort sorts again and keeps the selected flow under the cursor line.
func (m *Model) resort() {
	sel, ok := m.Selected()
	m.sortRows()
	if ok {
		m.cursor = slices.IndexFunc(m.rows, func(r Row) bool { return r.ID == sel.ID })
	}
	m.clamp()
}

func (m Model) openSelected() (Model, tea.Cmd, bool) {
	r, ok := m.Selected()
	if !ok {
		return m, nil, true
	}
	m.open, m.openRow, m.packets, m.pktErr, m.pktTop = r.ID, r, nil, nil, 0
	if r.Pcap == "" {
		m.pktErr = fmt.Errorf("no pcap was saved for this flow (run with --capture-dir, or `netsleuth capture`)")
		return m, nil, true
	}
	m.loading = true
	return m, ListPackets(r), true
}

// ListPackets is the command that reads r's packets from its pcap.
func ListPackets(r Row) tea.Cmd {
	return func() tea.Msg {
		ps, err := capture.PacketsOf(r.Pcap, r.Iface, r.Key, maxPackets)
		return PacketsListedMsg{ID: r.ID, Packets: ps, Err: err}
	}
}

func (m Model) packetKey(k tea.KeyPressMsg, km *keys.KeyMap) (Model, tea.Cmd, bool) {
	h := m.bodyLines()
	switch {
	case key.Matches(k, km.Back):
		m.open, m.packets, m.pktErr, m.loading = "", nil, nil, false
		return m, nil, true
	case key.Matches(k, km.Up):
		m.pktTop--
	case key.Matches(k, km.Down):
		m.pktTop++
	case key.Matches(k, km.PageUp):
		m.pktTop -= h
	case key.Matches(k, km.PageDown):
		m.pktTop += h
	case key.Matches(k, km.Top):
		m.pktTop = 0
	case key.Matches(k, km.Bottom):
		m.pktTop = len(m.packets)
	default:
		return m, nil, false
	}
	m.clamp()
	return m, nil, true
}

// View draws exactly the size's lines: a header naming the sort, the rows
// in view, and a footer with the position and the keys.
func (m Model) View(th *theme.Theme) string {
	var lines []string
	if m.open != "" {
		lines = m.packetView(th)
	} else {
		lines = m.tableView(th)
	}
	for len(lines) < m.height {
		lines = append(lines, "")
	}
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, m.width, "…")
	}
	return strings.Join(lines[:m.height], "\n")
}

// widths of the columns that depend on the width: below 100 cells there
// is no FIRST, CLIENT or SERVER (the sentence says who talked to whom);
// WHAT is last and cut at the edge.
func (m Model) widths() (where, addr int) {
	switch {
	case m.width >= 160:
		return 22, 21
	case m.width >= 100:
		return 16, 21
	}
	return 14, 0
}

func (m Model) tableView(th *theme.Theme) []string {
	whereW, addrW := m.widths()
	head := func(c Column, w int, right bool) string {
		s := c.String()
		if c == m.sort {
			s += map[bool]string{false: "▲", true: "▼"}[m.desc]
		}
		if right {
			return fmt.Sprintf("%*s", w, s)
		}
		return fmt.Sprintf("%-*s", w, s)
	}
	var h []string
	if addrW > 0 {
		h = append(h, head(ColFirst, 12, false))
	}
	h = append(h, head(ColIface, whereW, false), head(ColProto, 5, false))
	if addrW > 0 {
		h = append(h, head(ColClient, addrW, false), head(ColServer, addrW, false))
	}
	h = append(h, head(ColPackets, 5, true), head(ColBytes, 6, true), head(ColDuration, 6, true), head(ColClass, 23, false), "WHAT")
	out := []string{th.Render(th.Label, "  "+strings.Join(h, " "))}
	if len(m.rows) == 0 {
		out = append(out, "  no flows captured yet")
	}
	end := min(len(m.rows), m.top+m.bodyLines())
	for i := m.top; i < end; i++ {
		out = append(out, m.row(th, m.rows[i], i == m.cursor, whereW, addrW))
	}
	for len(out) < m.height-1 {
		out = append(out, "")
	}
	c, desc := m.Sort()
	dir := "▲"
	if desc {
		dir = "▼"
	}
	pos := "0/0"
	if len(m.rows) > 0 {
		pos = fmt.Sprintf("%d/%d", m.cursor+1, len(m.rows))
	}
	out = append(out, th.Render(th.Faint, fmt.Sprintf("flow %s · sort %s %s · s: column · S: direction · enter: packets", pos, c, dir)))
	return out
}

func (m Model) row(th *theme.Theme, r Row, selected bool, whereW, addrW int) string {
	first, dur, pk, by := "", "", "", ""
	if !r.First.IsZero() {
		first = r.First.Format("15:04:05.000")
		dur = fmtDur(r.Last.Sub(r.First))
		pk, by = fmt.Sprint(r.Packets), fmtBytes(r.Bytes)
	}
	mark := "✓"
	if r.Problem {
		mark = "✗"
	}
	cls := pad(mark+" "+r.Class, 23)
	if r.Problem {
		cls = th.Render(th.Error, cls)
	}
	var cols []string
	if addrW > 0 {
		cols = append(cols, fmt.Sprintf("%-12s", first))
	}
	cols = append(cols, pad(r.Iface, whereW), fmt.Sprintf("%-5s", r.Proto))
	if addrW > 0 {
		cols = append(cols, pad(r.Client, addrW), pad(r.Server, addrW))
	}
	cols = append(cols, fmt.Sprintf("%5s", pk), fmt.Sprintf("%6s", by), fmt.Sprintf("%6s", dur), cls, r.What)
	prefix := "  "
	if selected {
		prefix = "▸ "
	}
	s := prefix + strings.Join(cols, " ")
	if selected {
		return th.Render(th.Selected, s)
	}
	return s
}

func (m Model) packetView(th *theme.Theme) []string {
	r := m.openRow
	title := fmt.Sprintf("packets of %s %s → %s on %s · %s", r.Proto, r.Client, r.Server, r.Iface, r.Class)
	if r.Proto == "" {
		title = fmt.Sprintf("packets of %s · %s", r.Iface, r.Class)
	}
	out := []string{th.Render(th.Label, title)}
	switch {
	case m.loading:
		out = append(out, "  reading the pcap…")
	case m.pktErr != nil:
		out = append(out, "  "+th.Render(th.Error, "cannot list the packets: ")+m.pktErr.Error())
	case len(m.packets) == 0:
		out = append(out, "  the pcap holds no packets of this flow")
	default:
		out = append(out, th.Render(th.Label, fmt.Sprintf("  %-4s %-12s %-9s %-3s %-16s %6s  %s", "#", "TIME", "+", "DIR", "INTERFACE", "LEN", "FLAGS/SUMMARY")))
		t0 := m.packets[0].Time
		end := min(len(m.packets), m.pktTop+m.bodyLines()-1)
		for i := m.pktTop; i < end; i++ {
			p := m.packets[i]
			dir := "→"
			if !p.FromClient {
				dir = "←"
			}
			out = append(out, fmt.Sprintf("  %-4d %-12s %-9s %-3s %-16s %6d  %s", i+1, p.Time.Format("15:04:05.000"),
				"+"+fmtDur(p.Time.Sub(t0)), dir, p.Iface, p.Length, p.Summary))
		}
	}
	for len(out) < m.height-1 {
		out = append(out, "")
	}
	n := ""
	if len(m.packets) > 0 {
		n = fmt.Sprintf("packets %d-%d of %d · ", m.pktTop+1, min(len(m.packets), m.pktTop+m.bodyLines()-1), len(m.packets))
	}
	return append(out, th.Render(th.Faint, n+"→ client to server, ← back · esc: back to the flows"))
}

func pad(s string, w int) string {
	s = ansi.Truncate(s, w, "…")
	return s + strings.Repeat(" ", max(0, w-ansi.StringWidth(s)))
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func fmtBytes(b uint64) string {
	switch {
	case b >= 10<<20:
		return fmt.Sprintf("%dM", b>>20)
	case b >= 10<<10:
		return fmt.Sprintf("%dk", b>>10)
	}
	return fmt.Sprint(b)
}

// Merge gives rows read from a pcap the verdicts the probe wrote in its
// evidence that the pcap alone cannot give (source-not-translated needs
// the pod CIDRs): an evidence row whose sentence names a row's client
// address and server takes over its classification when it is a problem.
func Merge(rows, evidence []Row) []Row {
	for _, e := range evidence {
		if !e.Problem {
			continue
		}
		for i := range rows {
			r := &rows[i]
			c, err := netip.ParseAddrPort(r.Client)
			if err == nil && strings.Contains(e.What, c.Addr().String()+" ") && strings.Contains(e.What, r.Server) {
				r.Class, r.Problem, r.What = e.Class, true, e.What
			}
		}
	}
	return rows
}
