package statusbar

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/ui/keys"
	"github.com/netsleuth/netsleuth/ui/theme"
)

var t0 = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

// TestHintsKeepHelpAndQuit: at every width the bar fits and, from the
// narrowest useful width, still says how to get help and how to quit.
func TestHintsKeepHelpAndQuit(t *testing.T) {
	th, k := theme.New(false, true), keys.Default()
	m := New()
	var views []string
	for _, w := range []int{40, 60, 80, 120} {
		v := m.View(th, w, t0, k.ShortHelp(), keys.ShortPinned, "")
		if ansi.StringWidth(v) > w || !strings.Contains(v, "? help") || !strings.Contains(v, "q quit") {
			t.Errorf("width %d: %q", w, v)
		}
		views = append(views, v)
	}
	views = append(views, m.View(th, 80, t0, k.ShortHelp(), keys.ShortPinned, "←→ scroll · [ ] fix · "))
	golden.RequireEqual(t, strings.Join(views, "\n"))
}

// TestMessageThenHints: a message shows for MessageTTL, then the hints.
func TestMessageThenHints(t *testing.T) {
	th, k := theme.New(false, true), keys.Default()
	m := New()
	m.Say("copied fix 1 (1 command(s)) to the clipboard", false, t0)
	if v := m.View(th, 80, t0.Add(time.Second), k.ShortHelp(), keys.ShortPinned, ""); !strings.HasPrefix(v, "copied fix 1") {
		t.Errorf("during the message: %q", v)
	}
	if v := m.View(th, 80, t0.Add(MessageTTL+time.Second), k.ShortHelp(), keys.ShortPinned, ""); !strings.Contains(v, "q quit") {
		t.Errorf("after the message: %q", v)
	}
}
