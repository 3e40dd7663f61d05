// Package logpane is the event log: every event of the current runs, one
// line each, newest at the bottom, following the tail unless scrolled up.
package logpane

import (
	"strings"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/netsleuth/netsleuth/ui/state"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// Model is the log pane.
type Model struct {
	vp     viewport.Model
	shown  int // log lines rendered so far
	lines  []string
	follow bool // keep the newest line in view
	th     *theme.Theme
}

// New returns an empty pane.
func New() Model {
	vp := viewport.New()
	vp.FillHeight = true
	return Model{vp: vp, follow: true}
}

// SetSize sets the pane's size.
func (m *Model) SetSize(w, h int) {
	m.vp.SetWidth(w)
	m.vp.SetHeight(h)
	if m.follow {
		m.vp.GotoBottom()
	}
}

// Sync renders the log lines it has not shown yet and, when the view was at
// the bottom, keeps following the tail.
func (m *Model) Sync(log []state.LogLine, th *theme.Theme) {
	if len(log) == m.shown && th == m.th {
		return
	}
	if len(log) < m.shown || th != m.th {
		m.shown, m.lines, m.th = 0, nil, th // a new theme draws every line again
	}
	for _, l := range log[m.shown:] {
		m.lines = append(m.lines, th.Render(th.Faint, l.Time.Format("15:04:05")+" "+l.RunID)+" "+th.Render(th.Label, l.Probe)+" "+l.Text)
	}
	m.shown = len(log)
	m.vp.SetContent(strings.Join(m.lines, "\n"))
	if m.follow {
		m.vp.GotoBottom()
	}
}

// Update scrolls with the mouse wheel.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	var cmd tea.Cmd
	m.vp, cmd = m.vp.Update(msg)
	m.follow = m.vp.AtBottom()
	return m, cmd
}

// move moves the view; back at the bottom, it follows the tail again.
func (m *Model) move(f func(*viewport.Model)) { f(&m.vp); m.follow = m.vp.AtBottom() }

// ScrollUp scrolls up n lines.
func (m *Model) ScrollUp(n int) { m.move(func(v *viewport.Model) { v.ScrollUp(n) }) }

// ScrollDown scrolls down n lines.
func (m *Model) ScrollDown(n int) { m.move(func(v *viewport.Model) { v.ScrollDown(n) }) }

// PageUp scrolls up a page.
func (m *Model) PageUp() { m.move((*viewport.Model).PageUp) }

// PageDown scrolls down a page.
func (m *Model) PageDown() { m.move((*viewport.Model).PageDown) }

// HalfUp scrolls up half a page.
func (m *Model) HalfUp() { m.move((*viewport.Model).HalfPageUp) }

// HalfDown scrolls down half a page.
func (m *Model) HalfDown() { m.move((*viewport.Model).HalfPageDown) }

// Top shows the oldest lines.
func (m *Model) Top() { m.move(func(v *viewport.Model) { v.GotoTop(); v.SetXOffset(0) }) }

// Bottom shows the newest lines and follows them.
func (m *Model) Bottom() { m.move(func(v *viewport.Model) { v.GotoBottom() }) }

// ScrollLeft shows the start of long lines.
func (m *Model) ScrollLeft() { m.vp.ScrollLeft(8) }

// ScrollRight shows the rest of long lines.
func (m *Model) ScrollRight() { m.vp.ScrollRight(8) }

// View draws the pane.
func (m Model) View() string { return m.vp.View() }
