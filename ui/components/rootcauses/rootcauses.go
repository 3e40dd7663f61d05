// Package rootcauses is the navigation pane's first view when something is
// broken: each root cause, numbered as in the text report, with the
// symptoms it causes under it.
package rootcauses

import (
	"fmt"
	"strings"

	"github.com/netsleuth/netsleuth/report"
	"github.com/netsleuth/netsleuth/ui/components/rowlist"
	"github.com/netsleuth/netsleuth/ui/state"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// Model is the root-cause view.
type Model struct {
	List rowlist.Model
}

// Key is the row key of a finding.
func Key(findingKey string) string { return "finding:" + findingKey }

// Selected returns the key of the finding under the cursor.
func (m *Model) Selected() (string, bool) {
	r, ok := m.List.Selected()
	if !ok {
		return "", false
	}
	return strings.TrimPrefix(r.Key, "finding:"), true
}

// Rebuild makes the rows from the store's root causes, grouped and
// numbered as in the text report (many findings of one ID and status are
// one row, opening the first of them); filter, when set, keeps the causes
// whose title, ID or root cause match.
func (m *Model) Rebuild(s *state.Store, th *theme.Theme, filter string) {
	var rows []rowlist.Row
	for i, g := range s.Causes {
		f := g.First()
		if filter != "" && !matchesAny(filter, f.ID, f.Title, f.RootCause, report.Title(g)) {
			continue
		}
		rows = append(rows, rowlist.Row{Key: Key(f.Key), Selectable: true,
			Text: fmt.Sprintf("%s %s %s", th.Render(th.Label, fmt.Sprintf("[%d]", i+1)), th.Badge(f.Status), report.Title(g))})
		for _, sg := range report.GroupSymptoms(s.Report, g) {
			sym := sg.First()
			rows = append(rows, rowlist.Row{Key: Key(sym.Key), Selectable: true,
				Text: fmt.Sprintf("     ↳ %s %s: %s", th.Status(sym.Status, theme.Word(sym.Status)), sym.Probe, report.Title(sg))})
		}
	}
	if len(rows) == 0 {
		text := "No root cause: nothing fails so far."
		if filter != "" {
			text = fmt.Sprintf("no root cause matches %q", filter)
		}
		rows = append(rows, rowlist.Row{Key: "none", Text: th.Render(th.Faint, text)})
	}
	m.List.SetRows(rows)
}

func matchesAny(q string, fields ...string) bool {
	q = strings.ToLower(q)
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}
