package ui

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/netsleuth/netsleuth/ui/components/header"
	"github.com/netsleuth/netsleuth/ui/keys"
	"github.com/netsleuth/netsleuth/ui/state"
)

// Terminal sizes the TUI needs at least, and the width from which the
// navigation and detail panes sit side by side.
const (
	MinWidth, MinHeight = 40, 12
	WideFrom            = 120
	headerLines         = 2
	logLines            = 7
)

// layout is where every pane goes; Update sizes the panes from it and the
// mouse finds the pane under the pointer with it.
type layout struct {
	w, h           int
	wide, small    bool
	bodyTop, bodyH int
	navTop, navH   int // the list, below its tab bar
	navW           int
	detTop, detX   int // the viewport, below its title line
	detW, detH     int
	logTop, logH   int
	promptTop      int
}

// layout computes the layout for the current size and panes.
func (m *Model) layout() layout {
	l := layout{w: m.ctx.Width, h: m.ctx.Height}
	if l.w < MinWidth || l.h < MinHeight {
		l.small = true
		return l
	}
	l.bodyTop = headerLines
	l.bodyH = l.h - headerLines - 1 - m.prompt.Lines()
	if m.showLog {
		l.logH = min(logLines, l.bodyH/3)
		l.bodyH -= l.logH + 1
		l.logTop = l.bodyTop + l.bodyH + 1
	}
	l.promptTop = l.h - 1 - m.prompt.Lines()
	l.wide = l.w >= WideFrom
	switch {
	case m.zoom || m.showHelp || m.showFlows || m.phase != phaseRunning:
		l.detTop, l.detW, l.detH = l.bodyTop+1, l.w, l.bodyH-1
	case l.wide:
		l.navW = min(72, max(44, l.w*2/5))
		l.navTop, l.navH = l.bodyTop+1, l.bodyH-1
		l.detX, l.detTop, l.detW, l.detH = l.navW+1, l.bodyTop+1, l.w-l.navW-1, l.bodyH-1
	default:
		l.navW = l.w
		avail := l.bodyH - 2
		l.navH = max(3, min(m.navRows(), avail*2/5))
		l.navTop = l.bodyTop + 1
		l.detTop, l.detW = l.navTop+l.navH+1, l.w
		l.detH = l.bodyH - l.navH - 2
	}
	return l
}

// at says which pane is at cell (x, y).
func (l layout) at(x, y int) Focus {
	switch {
	case l.logH > 0 && y >= l.logTop:
		return FocusLog
	case l.navH > 0 && y >= l.navTop && y < l.navTop+l.navH && x < l.navW:
		return FocusNav
	}
	return FocusDetail
}

func (m *Model) navRows() int {
	if m.tab == TabRootCauses {
		return m.causes.List.Len()
	}
	return m.probes.List.Len()
}

// View draws the whole screen, exactly the terminal's size.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "netsleuth"
	return v
}

// render draws the screen as text.
func (m *Model) render() string {
	l := m.layout()
	if l.small {
		return fmt.Sprintf("netsleuth needs a terminal of at least %d×%d (this one is %d×%d)", MinWidth, MinHeight, l.w, l.h)
	}
	th := m.ctx.Theme
	lines := strings.Split(m.header.View(m.ctx, m.store, m.runState()), "\n")
	lines = append(lines, m.body(l)...)
	if m.showLog {
		lines = append(lines, m.rule("event log", m.focus == FocusLog, l.w, ""))
		lines = append(lines, strings.Split(m.log.View(), "\n")...)
	}
	if m.prompt.Active() {
		lines = append(lines, strings.Split(m.prompt.View(th, l.w), "\n")...)
	}
	lines = append(lines, m.statusLine(l.w))
	return fit(lines, l.w, l.h)
}

// body draws the panes between the header and the bottom lines, exactly
// l.bodyH lines.
func (m *Model) body(l layout) []string {
	switch {
	case m.phase != phaseRunning:
		return exact(m.cleanupView(l), l.bodyH)
	case m.showHelp:
		return exact(append([]string{m.rule("help (? or esc to close)", true, l.w, "")}, strings.Split(m.help.View(m.ctx.Keys), "\n")...), l.bodyH)
	case m.showFlows:
		return exact(append([]string{m.flowsRule(l.w)}, strings.Split(m.flowTab.View(m.ctx.Theme), "\n")...), l.bodyH)
	case m.zoom:
		return exact(append([]string{m.detailRule(l.w)}, strings.Split(m.detail.View(), "\n")...), l.bodyH)
	}
	nav := append([]string{m.tabBar(l.navW)}, strings.Split(m.navView(l.navW), "\n")...)
	det := append([]string{m.detailRule(l.detW)}, strings.Split(m.detail.View(), "\n")...)
	if !l.wide {
		return exact(append(nav, det...), l.bodyH)
	}
	sep := m.ctx.Theme.Render(m.ctx.Theme.Rule, "│")
	out := make([]string, l.bodyH)
	for i := range out {
		out[i] = padRight(at(nav, i), l.navW) + sep + at(det, i)
	}
	return out
}

func (m *Model) navView(width int) string {
	if m.tab == TabRootCauses {
		return m.causes.List.View(m.ctx.Theme, width)
	}
	return m.probes.List.View(m.ctx.Theme, width)
}

// tabBar is the navigation pane's first line: its two views, the active
// one in brackets, and the filters in force.
func (m *Model) tabBar(width int) string {
	th := m.ctx.Theme
	tab := func(n int, name string, active bool) string {
		if active {
			return th.Render(th.TabActive, fmt.Sprintf("[%d %s]", n, name))
		}
		return th.Render(th.Tab, fmt.Sprintf(" %d %s ", n, name))
	}
	focus := "○ "
	if m.focus == FocusNav && !m.zoom {
		focus = th.Render(th.Focused, "● ")
	}
	s := focus + tab(1, fmt.Sprintf("Root causes (%d)", len(m.store.Causes)), m.tab == TabRootCauses) + " " +
		tab(2, fmt.Sprintf("Probes (%d)", len(m.store.Probes)), m.tab == TabProbes)
	var notes []string
	if m.probes.FailingOnly {
		notes = append(notes, "failing only")
	}
	if m.filter != "" {
		notes = append(notes, fmt.Sprintf("filter %q", m.filter))
	}
	if len(notes) > 0 {
		s += th.Render(th.Faint, "  "+strings.Join(notes, ", "))
	}
	return ansi.Truncate(s, width, "…")
}

// detailRule is the detail pane's title line: focus, what it shows, where
// the view is.
func (m *Model) detailRule(width int) string {
	what := "detail"
	switch k := m.detail.Key(); {
	case strings.HasPrefix(k, "probe:"):
		what = "probe " + strings.TrimPrefix(k, "probe:")
	case strings.HasPrefix(k, "finding:"):
		what = "finding"
	}
	if m.zoom {
		what += " (full screen, esc to go back)"
	}
	return m.rule(what, m.focus == FocusDetail || m.zoom, width, m.detail.Position())
}

// flowsRule is the flow table's title line.
func (m *Model) flowsRule(width int) string {
	title := fmt.Sprintf("flows of every capture (%d; F or esc to close)", m.flowTab.Len())
	if m.flowTab.Opened() != "" {
		title = "packets of one flow (esc: back to the flows)"
	}
	return m.rule(title, true, width, "")
}

// rule is a pane's title line: "● title ──── position".
func (m *Model) rule(title string, focused bool, width int, right string) string {
	th := m.ctx.Theme
	mark := "○ "
	if focused {
		mark = "● "
	}
	left := mark + title + " "
	if right != "" {
		right = " " + right
	}
	fill := max(0, width-ansi.StringWidth(left)-ansi.StringWidth(right))
	s := left + strings.Repeat("─", fill) + right
	if focused {
		return th.Render(th.Focused, ansi.Truncate(s, width, "…"))
	}
	return th.Render(th.Faint, ansi.Truncate(s, width, "…"))
}

// cleanupView is the body while quitting.
func (m *Model) cleanupView(l layout) []string {
	th := m.ctx.Theme
	ns := m.runner.ID()
	out := []string{m.rule("quitting", true, l.w, ""), ""}
	if m.phase == phaseCleaning {
		out = append(out, "  "+m.spinner.View()+" "+th.Render(th.Label, "cleaning up…"),
			"  stopping the probes that still run, running their cleanups and deleting",
			"  the run's agents (namespace netsleuth-"+ns+"); this can take a few seconds.",
			"", th.Render(th.Faint, "  ctrl+c again leaves now; the cleanup still finishes before netsleuth exits."))
		return out
	}
	out = append(out, "  "+th.Render(th.Error, "cleanup failed: ")+oneLine(m.closeErr.Error()),
		"  some objects may be left in the cluster: run `"+m.ctx.Invocation+" cleanup` to delete them.",
		"", "  press any key to exit")
	return out
}

// runState is the header's run state.
func (m *Model) runState() header.Run {
	now := m.ctx.Now()
	r := header.Run{State: "done", Spinner: m.spinner.View(), Elapsed: now.Sub(m.store.Started)}
	_, running, _ := m.store.Counts()
	switch {
	case m.phase == phaseCleaning:
		r.State = "cleaning up…"
	case m.phase == phaseCleanupFailed:
		r.State = "cleanup failed"
	case running > 0:
		r.State = "running"
	default:
		r.Elapsed = m.lastEnd().Sub(m.store.Started)
	}
	return r
}

// lastEnd is when the last probe finished.
func (m *Model) lastEnd() time.Time {
	end := m.store.Started
	for _, p := range m.store.Probes {
		if p.Phase == state.Done && p.Ended.After(end) {
			end = p.Ended
		}
	}
	return end
}

func (m *Model) statusLine(width int) string {
	prefix := ""
	switch {
	case m.phase == phaseCleaning:
		return m.ctx.Theme.Render(m.ctx.Theme.Faint, "ctrl+c: leave now (the cleanup still finishes)")
	case m.phase == phaseCleanupFailed:
		return m.ctx.Theme.Render(m.ctx.Theme.Faint, "any key: exit")
	case m.prompt.Active():
		return m.ctx.Theme.Render(m.ctx.Theme.Faint, "enter: ok · esc: cancel")
	case m.showFlows:
		return m.ctx.Theme.Render(m.ctx.Theme.Faint, ansi.Truncate("↑↓ move · s/S sort · enter packets · esc back · r re-run · ? help · q quit", width, "…"))
	case m.focus == FocusDetail || m.zoom:
		prefix = "←→ scroll · [ ] fix · "
	}
	return m.status.View(m.ctx.Theme, width, m.ctx.Now(), m.ctx.Keys.ShortHelp(), keys.ShortPinned, prefix)
}

// exact cuts or pads lines to n.
func exact(lines []string, n int) []string {
	if len(lines) > n {
		return lines[:n]
	}
	for len(lines) < n {
		lines = append(lines, "")
	}
	return lines
}

// fit makes lines exactly h lines of at most w cells, keeping the last
// (the status bar) last.
func fit(lines []string, w, h int) string {
	if len(lines) != h && len(lines) > 0 {
		last := lines[len(lines)-1]
		lines = append(exact(lines[:len(lines)-1], h-1), last)
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "")
		}
	}
	return strings.Join(lines, "\n")
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return ""
}

func padRight(s string, w int) string {
	if n := ansi.StringWidth(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return ansi.Truncate(s, w, "")
}
