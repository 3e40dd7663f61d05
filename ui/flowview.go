package ui

import (
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/capture"
	"github.com/netsleuth/netsleuth/ui/components/flows"
	"github.com/netsleuth/netsleuth/ui/components/flowtable"
)

// The flow table (F): every capture of the report's findings as one
// sortable table, live as runs add captures, a flow opening to its packets.

// flowSource is one capture a finding cites.
type flowSource struct {
	pcap, iface string
	uplink      bool
	evidence    []flowtable.Row // the finding's verdicts for this capture
}

// flowsLoadedMsg carries the table's rows for the captures named by key;
// rows of an older key are dropped.
type flowsLoadedMsg struct {
	key  string
	rows []flowtable.Row
}

// flowSources are the captures of r's findings, each once, and a key that
// changes when they change.
func flowSources(r *model.Report) (string, []flowSource) {
	if r == nil {
		return "", nil
	}
	var out []flowSource
	var key strings.Builder
	seen := map[string]bool{}
	for _, f := range r.Findings {
		t := flows.Parse(f.Evidence)
		if t.Empty() {
			continue
		}
		ev := flowtable.RowsFromEvidence(f.Evidence)
		for _, c := range t.Captures {
			id := c.Node + "/" + c.Iface
			if c.Pcap != "" {
				id = c.Pcap
			}
			if seen[id] || strings.HasPrefix(c.Summary, "did not run") {
				continue
			}
			seen[id] = true
			where := c.Node + " " + c.Iface
			s := flowSource{pcap: c.Pcap, iface: c.Node + "/" + c.Iface, uplink: c.Point == "uplink"}
			for _, e := range ev {
				if e.Iface == where {
					s.evidence = append(s.evidence, e)
				}
			}
			out = append(out, s)
			key.WriteString(id + "|" + c.Summary + ";")
		}
	}
	return key.String(), out
}

// loadFlows reads the captures' pcaps into rows, off the event loop; a
// capture whose pcap is gone shows its evidence rows instead.
func loadFlows(key string, srcs []flowSource) tea.Cmd {
	return func() tea.Msg {
		var rows []flowtable.Row
		for _, s := range srcs {
			if s.pcap != "" {
				t, err := capture.AnalyzeFile(s.pcap, capture.ReadOptions{Iface: s.iface})
				if err == nil {
					rows = append(rows, flowtable.Merge(flowtable.RowsFromTable(t, capture.Context{Uplink: s.uplink}, s.pcap), s.evidence)...)
					continue
				}
			}
			rows = append(rows, s.evidence...)
		}
		return flowsLoadedMsg{key: key, rows: rows}
	}
}

// syncFlows reloads the table when the report's captures changed.
func (m *Model) syncFlows() tea.Cmd {
	if !m.showFlows {
		return nil
	}
	key, srcs := flowSources(m.store.Report)
	if key == m.flowsKey {
		return nil
	}
	m.flowsKey = key
	return loadFlows(key, slices.Clone(srcs))
}

func (m *Model) onFlowsLoaded(msg flowsLoadedMsg) {
	if msg.key == m.flowsKey {
		m.flowTab.SetRows(msg.rows)
	}
}

// toggleFlows opens or closes the flow table.
func (m *Model) toggleFlows() tea.Cmd {
	m.showFlows = !m.showFlows
	m.refresh()
	if !m.showFlows {
		return nil
	}
	m.flowsKey = "\x00" // load whatever is there now
	return m.syncFlows()
}

// flowKey routes a key to the open flow table: its own keys first, then
// Esc or F closes it; the rest (q, ?, r, R) stay the app's.
func (m *Model) flowKey(k tea.KeyPressMsg) (tea.Cmd, bool) {
	var cmd tea.Cmd
	var ok bool
	m.flowTab, cmd, ok = m.flowTab.Update(k, m.ctx.Keys)
	if ok {
		return cmd, true
	}
	if k.String() == "esc" || k.String() == "F" {
		return m.toggleFlows(), true
	}
	return nil, false
}
