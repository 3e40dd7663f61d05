package logpane

import (
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/ui/internal/uitest"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// TestFollowsTheTail: the pane shows the newest lines, stops following when
// scrolled up and follows again at the bottom.
func TestFollowsTheTail(t *testing.T) {
	first, _ := uitest.Demo(t)
	s := uitest.Store(t, first, "snat", "healthy")
	th := theme.New(false, true)
	m := New()
	m.SetSize(80, 5)
	m.Sync(s.Log, th)
	golden.RequireEqual(t, m.View())
	m.ScrollUp(3)
	before := m.View()
	s.Log = append(s.Log, s.Log[0])
	s.Log[len(s.Log)-1].Time = uitest.T0.Add(time.Minute)
	m.Sync(s.Log, th)
	if m.View() != before {
		t.Error("a new line moved a view the user scrolled up")
	}
	m.ScrollDown(10)
	m.Sync(s.Log, th)
	if !m.follow || m.vp.TotalLineCount() != len(s.Log) {
		t.Errorf("at the bottom: follow %v, %d lines of %d", m.follow, m.vp.TotalLineCount(), len(s.Log))
	}
}

// TestThemeChangeRedraws: the terminal's background answer redraws the
// lines already shown in the new theme.
func TestThemeChangeRedraws(t *testing.T) {
	first, _ := uitest.Demo(t)
	s := uitest.Store(t, first, "healthy")
	m := New()
	m.SetSize(80, 3)
	m.Sync(s.Log, theme.New(false, true))
	plain := m.View()
	m.Sync(s.Log, theme.New(true, false))
	if m.View() == plain {
		t.Error("the log kept the old theme")
	}
}

// TestPagesAndEnds: the page keys move the log a page, Top shows the first
// line and stops following, Bottom follows again.
func TestPagesAndEnds(t *testing.T) {
	first, _ := uitest.Demo(t)
	s := uitest.Store(t, first, "snat", "healthy")
	m := New()
	m.SetSize(80, 3)
	m.Sync(s.Log, theme.New(false, true))
	if len(s.Log) < 8 {
		t.Fatalf("the demo log has %d lines; the test needs more than two pages", len(s.Log))
	}
	bottom := m.vp.YOffset()
	m.PageUp()
	if got := bottom - m.vp.YOffset(); got != 3 || m.follow {
		t.Errorf("PageUp moved %d lines (want 3), follow %v", got, m.follow)
	}
	m.Top()
	if m.vp.YOffset() != 0 || m.follow {
		t.Errorf("Top: offset %d, follow %v", m.vp.YOffset(), m.follow)
	}
	m.HalfDown()
	if m.vp.YOffset() == 0 {
		t.Error("HalfDown did not move")
	}
	m.Bottom()
	if m.vp.YOffset() != bottom || !m.follow {
		t.Errorf("Bottom: offset %d (want %d), follow %v", m.vp.YOffset(), bottom, m.follow)
	}
}
