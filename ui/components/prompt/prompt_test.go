package prompt

import (
	"errors"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/ui/msgs"
	"github.com/netsleuth/netsleuth/ui/theme"
)

func typeText(t *testing.T, m Model, s string) Model {
	t.Helper()
	for _, r := range s {
		m, _ = m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	return m
}

// TestTwoStepsWithARefusal: the policy question asks from, then to; an
// empty answer is refused on a line of its own and the prompt stays.
func TestTwoStepsWithARefusal(t *testing.T) {
	th := theme.New(false, true)
	need := func(s string) error {
		if s == "" {
			return errors.New("give a value, or esc to cancel")
		}
		return nil
	}
	m, _ := Open(msgs.PromptPolicy, th, Step{Label: "from", Check: need}, Step{Label: "to", Check: need})
	m, cmd := m.Update(tea.KeyPressMsg{Code: tea.KeyEnter})
	if cmd != nil || !m.Active() || m.Lines() != 2 {
		t.Fatalf("an empty answer was taken (lines %d)", m.Lines())
	}
	refused := m.View(th, 60)
	m = typeText(t, m, "default/client")
	m, _ = m.Update(tea.KeyPressMsg{Code: tea.KeyEnter})
	m = typeText(t, m, "default/server:80")
	second := m.View(th, 60)
	m, cmd = m.Update(tea.KeyPressMsg{Code: tea.KeyEnter})
	if m.Active() || cmd == nil {
		t.Fatal("the last step did not submit")
	}
	got, ok := cmd().(msgs.PromptSubmittedMsg)
	if !ok || got.Purpose != msgs.PromptPolicy || strings.Join(got.Values, " → ") != "default/client → default/server:80" {
		t.Errorf("submitted %+v", got)
	}
	golden.RequireEqual(t, refused+"\n---\n"+second)
}

// TestFilterReportsEveryChange and esc cancels.
func TestFilterReportsEveryChange(t *testing.T) {
	m, _ := Open(msgs.PromptFilter, theme.New(false, true), Step{Label: "filter findings"})
	m, cmd := m.Update(tea.KeyPressMsg{Code: 'd', Text: "d"})
	var changed bool
	msg := cmd()
	batch, ok := msg.(tea.BatchMsg)
	if !ok {
		batch = tea.BatchMsg{func() tea.Msg { return msg }}
	}
	for _, c := range batch {
		if c == nil {
			continue
		}
		if ch, ok := c().(msgs.PromptChangedMsg); ok && ch.Value == "d" {
			changed = true
		}
	}
	if !changed {
		t.Error("typing did not report the filter's new value")
	}
	m, cmd = m.Update(tea.KeyPressMsg{Code: tea.KeyEscape})
	if _, ok := cmd().(msgs.PromptCancelledMsg); !ok || m.Active() {
		t.Error("esc did not cancel")
	}
}
