// Package rowlist is the scrolling, selectable list of rows the navigation
// panes are made of: group headings that cannot be selected, and rows with
// a stable key so the selection survives a rebuild.
package rowlist

import (
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/netsleuth/netsleuth/ui/theme"
)

// Row is one line of a list.
type Row struct {
	Key        string // stable identity, e.g. "probe:dns"
	Text       string // rendered (maybe styled) text, cut to the width when drawn
	Selectable bool
}

// Model is a list with a cursor and a scroll offset.
type Model struct {
	rows   []Row
	cursor int
	offset int
	height int
}

// SetHeight sets how many rows the view shows.
func (m *Model) SetHeight(h int) {
	m.height = h
	m.follow()
}

// Height is how many rows the view shows.
func (m *Model) Height() int { return m.height }

// SetRows replaces the rows, keeping the cursor on the row with the same key
// when it is still there, else on the nearest selectable row.
func (m *Model) SetRows(rows []Row) {
	key := ""
	if r, ok := m.Selected(); ok {
		key = r.Key
	}
	m.rows = rows
	for i, r := range rows {
		if r.Key == key && r.Selectable {
			m.cursor = i
			m.follow()
			return
		}
	}
	m.cursor = min(m.cursor, len(rows)-1)
	m.settle(1)
}

// Rows returns the rows.
func (m *Model) Rows() []Row { return m.rows }

// Len is the number of rows.
func (m *Model) Len() int { return len(m.rows) }

// Selected returns the row under the cursor.
func (m *Model) Selected() (Row, bool) {
	if m.cursor < 0 || m.cursor >= len(m.rows) || !m.rows[m.cursor].Selectable {
		return Row{}, false
	}
	return m.rows[m.cursor], true
}

// Select moves the cursor to the row with key; it reports whether it exists.
func (m *Model) Select(key string) bool {
	for i, r := range m.rows {
		if r.Key == key && r.Selectable {
			m.cursor = i
			m.follow()
			return true
		}
	}
	return false
}

// Move moves the cursor by delta selectable rows, stopping at the ends.
func (m *Model) Move(delta int) {
	step := 1
	if delta < 0 {
		step, delta = -1, -delta
	}
	for ; delta > 0; delta-- {
		next := m.cursor + step
		for next >= 0 && next < len(m.rows) && !m.rows[next].Selectable {
			next += step
		}
		if next < 0 || next >= len(m.rows) {
			break
		}
		m.cursor = next
	}
	m.follow()
}

// Top selects the first selectable row, Bottom the last.
func (m *Model) Top() { m.cursor = 0; m.settle(1) }

// Bottom selects the last selectable row.
func (m *Model) Bottom() { m.cursor = len(m.rows) - 1; m.settle(-1) }

// settle moves the cursor off a heading, in direction dir first.
func (m *Model) settle(dir int) {
	defer m.follow()
	if len(m.rows) == 0 {
		m.cursor = 0
		return
	}
	m.cursor = max(0, min(m.cursor, len(m.rows)-1))
	for _, d := range []int{dir, -dir} {
		for i := m.cursor; i >= 0 && i < len(m.rows); i += d {
			if m.rows[i].Selectable {
				m.cursor = i
				return
			}
		}
	}
}

// Scroll moves the view by delta rows (the mouse wheel), taking the cursor
// along when it would leave the view.
func (m *Model) Scroll(delta int) {
	m.offset = max(0, min(m.offset+delta, len(m.rows)-m.height))
	switch {
	case m.cursor < m.offset:
		m.cursor = m.offset
		m.settle(1)
	case m.cursor >= m.offset+m.height:
		m.cursor = m.offset + m.height - 1
		m.settle(-1)
	}
}

// RowAt returns the key of the row drawn at line y of the view.
func (m *Model) RowAt(y int) (string, bool) {
	i := m.offset + y
	if y < 0 || y >= m.height || i >= len(m.rows) || !m.rows[i].Selectable {
		return "", false
	}
	return m.rows[i].Key, true
}

// follow keeps the cursor inside the view.
func (m *Model) follow() {
	if m.height <= 0 {
		return
	}
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+m.height {
		m.offset = m.cursor - m.height + 1
	}
	m.offset = max(0, min(m.offset, len(m.rows)-m.height))
}

// View draws the view's rows, width cells wide: the selected row with a
// marker (and, in colour, highlighted across the width), every row cut to
// the width.
func (m *Model) View(th *theme.Theme, width int) string {
	height := m.height
	lines := make([]string, 0, height)
	for i := m.offset; i < len(m.rows) && len(lines) < height; i++ {
		r := m.rows[i]
		mark := "  "
		if i == m.cursor && r.Selectable {
			mark = "▸ "
		}
		line := ansi.Truncate(mark+r.Text, width, "…")
		if i == m.cursor && r.Selectable && th.Color {
			// One style for the whole row: inner resets would cut the highlight.
			line = th.Render(th.Selected, pad(ansi.Strip(line), width))
		}
		lines = append(lines, line)
	}
	for len(lines) < height {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

func pad(s string, width int) string {
	if w := ansi.StringWidth(s); w < width {
		return s + strings.Repeat(" ", width-w)
	}
	return s
}
