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
