// Package statusbar is the bottom line: a message about the last action
// (copied, exported, the prompt's error) for a few seconds, else the key
// hints for what has focus.
package statusbar

import (
	"slices"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"github.com/charmbracelet/x/ansi"

	"github.com/netsleuth/netsleuth/ui/theme"
)

// MessageTTL is how long a message stays.
const MessageTTL = 6 * time.Second

// Model is the status bar.
type Model struct {
	text  string
	isErr bool
	until time.Time
	help  help.Model
}

// New returns an empty bar.
func New() Model { return Model{help: help.New()} }

// Say shows a message until now+MessageTTL.
func (m *Model) Say(text string, isErr bool, now time.Time) {
	m.text, m.isErr, m.until = text, isErr, now.Add(MessageTTL)
}

// Message is the message shown at now, if any.
func (m *Model) Message(now time.Time) (string, bool) {
	if m.text == "" || now.After(m.until) {
		return "", false
	}
	return m.text, true
}

// View draws the bar: the message, or the hints for bindings. When the
// hints do not fit, the ones before the last pinned are dropped from the
// end, so the way to the full help and out (? and q, last in the keymap's
// short help) stays on screen at every width.
func (m *Model) View(th *theme.Theme, width int, now time.Time, hints []key.Binding, pinned int, prefix string) string {
	if text, ok := m.Message(now); ok {
		st := th.Message
		if m.isErr {
			st = th.Error
		}
		return ansi.Truncate(th.Render(st, text), width, "…")
	}
	m.help.SetWidth(0)
	if th.Color {
		m.help.Styles = th.Help
	} else {
		m.help.Styles = help.Styles{}
	}
	pinned = min(max(0, pinned), len(hints))
	head, tail := hints[:len(hints)-pinned], hints[len(hints)-pinned:]
	for {
		s := prefix + m.help.ShortHelpView(append(slices.Clone(head), tail...))
		if ansi.StringWidth(s) <= width || len(head) == 0 {
			return ansi.Truncate(s, width, "…")
		}
		head = head[:len(head)-1]
	}
}
