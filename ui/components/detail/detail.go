// Package detail is the pane that explains the selected probe or finding,
// in a viewport that scrolls both ways: prose is wrapped to the pane,
// commands and tables are not, so long lines scroll sideways (or show
// whole in the full-screen view).
package detail

import (
	"fmt"
	"time"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/state"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// Item is what the pane shows: a probe, or one of the report's findings.
type Item struct {
	// Key identifies the selection ("probe:dns", "finding:<key>"); the
	// scroll position resets when it changes.
	Key     string
	Probe   *state.Probe
	Finding *model.Finding
	Report  *model.Report
	// Version changes when what the item shows changes.
	Version string
	Now     time.Time
	Spinner string
}

// CompactBelow is the pane height under which sections are not separated
// by blank lines, so a root cause and its fix fit on an 80×24 screen.
const CompactBelow = 24

// Model is the detail pane.
type Model struct {
	vp       viewport.Model
	item     Item
	sig      string
	fix      int
	fixLines []int
	width    int
}

// New returns an empty pane.
func New() Model {
	vp := viewport.New()
	vp.SoftWrap = false
	vp.FillHeight = true
	vp.SetHorizontalStep(8)
	vp.MouseWheelDelta = 3
	return Model{vp: vp}
}

// SetSize sets the pane's size.
func (m *Model) SetSize(w, h int) {
	m.vp.SetWidth(w)
	m.vp.SetHeight(h)
}

// Width and Height are the pane's size.
func (m *Model) Width() int { return m.vp.Width() }

// Height is the pane's height.
func (m *Model) Height() int { return m.vp.Height() }

// SetItem shows it, rebuilding the content when anything it shows, the
// width, the theme or the selected fix changed.
func (m *Model) SetItem(th *theme.Theme, it Item) {
	if it.Key != m.item.Key {
		m.fix = 0
		m.vp.SetYOffset(0)
		m.vp.SetXOffset(0)
	}
	sig := fmt.Sprintf("%s|%s|%dx%d|%p|%d", it.Key, it.Version, m.vp.Width(), min(m.vp.Height(), CompactBelow), th, m.fix)
	m.item = it
	if sig == m.sig {
		return
	}
	m.sig = sig
	p := &page{th: th, width: max(20, m.vp.Width()-1), compact: m.vp.Height() < CompactBelow}
	switch {
	case it.Finding != nil:
		p.finding(*it.Finding, it.Report, m.fix)
	case it.Probe != nil:
		p.probe(it.Probe, it.Report, it.Now, it.Spinner)
	default:
		p.add(th.Render(th.Faint, "Nothing selected."))
	}
	m.fixLines = p.fixLines
	m.vp.SetContentLines(p.lines)
}

// Key is the shown item's key.
func (m *Model) Key() string { return m.item.Key }

// Fixes is the shown finding's fixes.
func (m *Model) Fixes() []model.Fix {
	if m.item.Finding == nil {
		return nil
	}
	return m.item.Finding.Fixes
}

// SelectedFix returns the marked fix and its number (from 1).
func (m *Model) SelectedFix() (model.Fix, int, bool) {
	fs := m.Fixes()
	if m.fix >= len(fs) {
		return model.Fix{}, 0, false
	}
	return fs[m.fix], m.fix + 1, true
}

// MoveFix marks the next (delta 1) or previous fix and scrolls to it.
func (m *Model) MoveFix(th *theme.Theme, delta int) {
	n := len(m.Fixes())
	if n == 0 {
		return
	}
	m.fix = (m.fix + delta + n) % n
	m.SetItem(th, m.item)
	if m.fix < len(m.fixLines) {
		line := m.fixLines[m.fix]
		if line < m.vp.YOffset() || line >= m.vp.YOffset()+m.vp.Height() {
			m.vp.SetYOffset(line)
		}
	}
}

// ScrollDown and the others move the view.
func (m *Model) ScrollDown(n int) { m.vp.ScrollDown(n) }

// ScrollUp scrolls up n lines.
func (m *Model) ScrollUp(n int) { m.vp.ScrollUp(n) }

// ScrollLeft scrolls left one step.
func (m *Model) ScrollLeft() { m.vp.ScrollLeft(8) }

// ScrollRight scrolls right one step.
func (m *Model) ScrollRight() { m.vp.ScrollRight(8) }

// PageDown scrolls a page down.
func (m *Model) PageDown() { m.vp.PageDown() }

// PageUp scrolls a page up.
func (m *Model) PageUp() { m.vp.PageUp() }

// HalfDown scrolls half a page down.
func (m *Model) HalfDown() { m.vp.HalfPageDown() }

// HalfUp scrolls half a page up.
func (m *Model) HalfUp() { m.vp.HalfPageUp() }

// Top scrolls to the top.
func (m *Model) Top() { m.vp.GotoTop(); m.vp.SetXOffset(0) }

// Bottom scrolls to the bottom.
func (m *Model) Bottom() { m.vp.GotoBottom() }

// Update passes mouse wheel messages to the viewport.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	if _, ok := msg.(tea.MouseWheelMsg); ok {
		var cmd tea.Cmd
		m.vp, cmd = m.vp.Update(msg)
		return m, cmd
	}
	return m, nil
}

// Position says where the view is: "lines 1-20 of 64", and "→" when lines
// are wider than the pane.
func (m *Model) Position() string {
	total := m.vp.TotalLineCount()
	if total == 0 {
		return ""
	}
	first := m.vp.YOffset() + 1
	last := min(total, m.vp.YOffset()+m.vp.Height())
	s := fmt.Sprintf("%d-%d/%d", first, last, total)
	if x := m.vp.XOffset(); x > 0 {
		s += fmt.Sprintf(" ←%d", x)
	}
	if m.vp.HorizontalScrollPercent() < 1 {
		s += " →"
	}
	return s
}

// View draws the pane.
func (m Model) View() string { return m.vp.View() }
