package rowlist

import (
	"testing"

	"github.com/netsleuth/netsleuth/ui/theme"
)

func rows() []Row {
	return []Row{{Key: "h1", Text: "heading"}, {Key: "a", Text: "a", Selectable: true}, {Key: "b", Text: "b", Selectable: true},
		{Key: "h2", Text: "heading 2"}, {Key: "c", Text: "c", Selectable: true}, {Key: "d", Text: "d", Selectable: true}}
}

func TestMoveSkipsHeadingsAndKeepsSelection(t *testing.T) {
	var m Model
	m.SetHeight(3)
	m.SetRows(rows())
	if r, _ := m.Selected(); r.Key != "a" {
		t.Fatalf("first selection = %q, want a (not the heading)", r.Key)
	}
	m.Move(2)
	if r, _ := m.Selected(); r.Key != "c" {
		t.Errorf("after 2 downs = %q, want c", r.Key)
	}
	m.SetRows(append([]Row{{Key: "new", Text: "new", Selectable: true}}, rows()...))
	if r, _ := m.Selected(); r.Key != "c" {
		t.Errorf("after a rebuild = %q, want c still", r.Key)
	}
	m.Bottom()
	if got := m.View(theme.New(false, true), 10); got != "  heading…\n  c\n▸ d" {
		t.Errorf("view = %q", got)
	}
	if k, ok := m.RowAt(1); !ok || k != "c" {
		t.Errorf("RowAt(1) = %q %v", k, ok)
	}
	m.Scroll(-10)
	if r, _ := m.Selected(); r.Key != "a" {
		t.Errorf("after scrolling to the top the cursor is on %q, want the last visible row a", r.Key)
	}
	m.Top()
	m.Move(-5)
	if r, _ := m.Selected(); r.Key != "new" {
		t.Errorf("moving past the top = %q", r.Key)
	}
}
