// Package probelist is the navigation pane's probe view: the probes grouped
// by scenario letter, each with its live status (a spinner while it runs,
// then ✓ ✗ ! – and the word, so it reads without colour), its duration and
// its finding counts, and under an unfolded probe its findings.
package probelist

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/components/rowlist"
	"github.com/netsleuth/netsleuth/ui/state"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// Scenarios names the scenario letters of the catalogue.
var Scenarios = map[string]string{
	"A": "pods to external subnets", "B": "pod-to-pod", "C": "DNS", "D": "NetworkPolicy",
	"E": "container runtimes", "F": "kubelet configuration", "G": "node ports", "H": "pod CIDRs",
	"I": "security exposure", "J": "node kernel settings", "K": "flow capture", "L": "Services",
	"M": "one connection, traced",
}

// Model is the probe view.
type Model struct {
	List        rowlist.Model
	folded      map[string]bool // the user's choice per probe
	FailingOnly bool
	Filter      string
	shown       int
}

// New returns the view.
func New() Model { return Model{folded: map[string]bool{}} }

// ProbeKey and FindingKey are the row keys.
func ProbeKey(id string) string { return "probe:" + id }

// FindingKey is the row key of a finding.
func FindingKey(key string) string { return "finding:" + key }

// Selection says what the cursor is on.
type Selection struct {
	Probe   string // the probe of the row
	Finding string // the finding's key, "" on a probe row
}

// Selected returns what the cursor is on.
func (m *Model) Selected() (Selection, bool) {
	r, ok := m.List.Selected()
	if !ok {
		return Selection{}, false
	}
	probe, finding, _ := strings.Cut(r.Key, "|")
	return Selection{Probe: strings.TrimPrefix(probe, "probe:"), Finding: strings.TrimPrefix(finding, "finding:")}, true
}

// Toggle folds or unfolds the selected probe (or the probe of the selected
// finding, moving the cursor onto it).
func (m *Model) Toggle(s *state.Store, fold bool, now time.Time, spin string, th *theme.Theme) {
	sel, ok := m.Selected()
	if !ok {
		return
	}
	m.folded[sel.Probe] = fold
	m.Rebuild(s, now, spin, th)
	m.List.Select(ProbeKey(sel.Probe))
}

// isFolded is the user's choice, else unfolded when the probe has findings
// that do not pass.
func (m *Model) isFolded(p *state.Probe) bool {
	if f, ok := m.folded[p.Info.ID]; ok {
		return f
	}
	return p.Summary.Warn+p.Summary.Fail+p.Summary.Error == 0
}

// Shown is how many probes the filters let through.
func (m *Model) Shown() int { return m.shown }

// Rebuild makes the rows from the store.
func (m *Model) Rebuild(s *state.Store, now time.Time, spin string, th *theme.Theme) {
	var rows []rowlist.Row
	group := ""
	m.shown = 0
	ps := slices.Clone(s.Probes)
	slices.SortStableFunc(ps, func(a, b *state.Probe) int { return strings.Compare(a.Info.Scenario, b.Info.Scenario) })
	for _, p := range ps {
		fs := m.visibleFindings(p)
		if !m.probeShown(p, fs) {
			continue
		}
		m.shown++
		if p.Info.Scenario != group {
			group = p.Info.Scenario
			rows = append(rows, rowlist.Row{Key: "group:" + group, Text: th.Render(th.Faint, group+" · "+Scenarios[group])})
		}
		rows = append(rows, rowlist.Row{Key: ProbeKey(p.Info.ID), Text: probeRow(p, now, spin, th, m.isFolded(p) && len(p.Findings) > 0), Selectable: true})
		if m.isFolded(p) && m.Filter == "" {
			continue
		}
		for _, f := range fs {
			rows = append(rows, rowlist.Row{Key: ProbeKey(p.Info.ID) + "|" + FindingKey(f.Key), Selectable: true,
				Text: "    " + th.Badge(f.Status) + " " + f.Title})
		}
	}
	if len(rows) == 0 {
		rows = append(rows, rowlist.Row{Key: "empty", Text: th.Render(th.Faint, m.emptyText())})
	}
	m.List.SetRows(rows)
}

func (m *Model) emptyText() string {
	switch {
	case m.Filter != "":
		// The hint first: a long filter is what a narrow pane cuts.
		return fmt.Sprintf("esc clears the filter; no finding matches %q", m.Filter)
	case m.FailingOnly:
		return "nothing fails (f shows every probe)"
	}
	return "no probe selected"
}

func (m *Model) probeShown(p *state.Probe, fs []model.Finding) bool {
	switch {
	case m.FailingOnly && !p.Failing():
		return false
	case m.Filter != "":
		return len(fs) > 0 || matches(m.Filter, p.Info.ID, p.Info.Title)
	}
	return true
}

// visibleFindings are the probe's findings the filters let through.
func (m *Model) visibleFindings(p *state.Probe) []model.Finding {
	var out []model.Finding
	for _, f := range p.Findings {
		if m.FailingOnly && !f.Status.Failing() {
			continue
		}
		subj := ""
		if f.Subject != nil {
			subj = f.Subject.String()
		}
		if m.Filter != "" && !matches(m.Filter, f.ID, f.Title, subj, f.Probe, f.RootCause) {
			continue
		}
		out = append(out, f)
	}
	return out
}

func matches(q string, fields ...string) bool {
	q = strings.ToLower(q)
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}

// probeRow is "✗ FAIL  external        8.5s  2 fail, 1 pass ▸".
func probeRow(p *state.Probe, now time.Time, spin string, th *theme.Theme, folded bool) string {
	var status string
	switch p.Phase {
	case state.Pending:
		status = "· WAIT "
	case state.Running:
		status = th.Render(th.Focused, spin+" RUN  ")
	default:
		status = th.Badge(p.Worst())
	}
	d := ""
	if p.Phase != state.Pending {
		d = state.Seconds(p.Duration(now))
	}
	tail := shortCounts(p.Summary)
	if p.Phase == state.Running {
		tail = th.Render(th.Faint, p.Stage)
	}
	if folded {
		tail += th.Render(th.Faint, " ›")
	}
	return strings.TrimRight(fmt.Sprintf("%s %-14s %6s  %s", status, p.Info.ID, d, tail), " ")
}

// shortCounts is "2✗ 1!" "3✓": failures and errors, warnings, passes.
func shortCounts(s model.Summary) string {
	var parts []string
	if n := s.Fail + s.Error; n > 0 {
		parts = append(parts, fmt.Sprintf("%d✗", n))
	}
	if s.Warn > 0 {
		parts = append(parts, fmt.Sprintf("%d!", s.Warn))
	}
	if s.Pass > 0 {
		parts = append(parts, fmt.Sprintf("%d✓", s.Pass))
	}
	if s.Skip > 0 {
		parts = append(parts, fmt.Sprintf("%d–", s.Skip))
	}
	return strings.Join(parts, " ")
}
