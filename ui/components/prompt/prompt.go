// Package prompt asks for a value on one line above the status bar (the
// filter, an external target, a policy question's two ends, an export file)
// and says what it is for. A prompt of several steps asks them in turn.
package prompt

import (
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/netsleuth/netsleuth/ui/msgs"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// Step is one question.
type Step struct {
	Label, Placeholder, Value string
	// Check returns why a value cannot be used, or nil.
	Check func(string) error
}

// Model is an open or closed prompt.
type Model struct {
	purpose msgs.PromptPurpose
	steps   []Step
	at      int
	values  []string
	input   textinput.Model
	err     string
}

// Open starts a prompt for purpose with its steps; a plain theme gets a
// plain, steady cursor.
func Open(purpose msgs.PromptPurpose, th *theme.Theme, steps ...Step) (Model, tea.Cmd) {
	m := Model{purpose: purpose, steps: steps, input: textinput.New()}
	if th.Color {
		m.input.SetStyles(textinput.DefaultStyles(th.Dark))
	} else {
		m.input.SetStyles(textinput.Styles{Cursor: textinput.CursorStyle{Shape: tea.CursorBlock}})
	}
	m.input.Prompt = ""
	m.input.CharLimit = 512
	return m, m.begin()
}

func (m *Model) begin() tea.Cmd {
	s := m.steps[m.at]
	m.input.Reset()
	m.input.Placeholder = s.Placeholder
	m.input.SetValue(s.Value)
	m.input.CursorEnd()
	m.err = ""
	return m.input.Focus()
}

// Active reports whether the prompt is open.
func (m *Model) Active() bool { return m.purpose != 0 }

// Purpose is what the open prompt is for.
func (m *Model) Purpose() msgs.PromptPurpose { return m.purpose }

// Close closes the prompt.
func (m *Model) Close() { *m = Model{} }

// SetError shows why the submitted value was refused and keeps the prompt.
func (m *Model) SetError(err string) { m.err = err }

// Update handles a key: Enter submits the step (checking it), Esc cancels,
// anything else edits; the filter reports every change.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	if !m.Active() {
		return m, nil
	}
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch k.String() {
		case "esc":
			p := m.purpose
			m.Close()
			return m, func() tea.Msg { return msgs.PromptCancelledMsg{Purpose: p} }
		case "enter":
			return m.submit()
		}
	}
	before := m.input.Value()
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	if v := m.input.Value(); v != before && m.purpose == msgs.PromptFilter {
		p := m.purpose
		return m, tea.Batch(cmd, func() tea.Msg { return msgs.PromptChangedMsg{Purpose: p, Value: v} })
	}
	return m, cmd
}

func (m Model) submit() (Model, tea.Cmd) {
	v := strings.TrimSpace(m.input.Value())
	if c := m.steps[m.at].Check; c != nil {
		if err := c(v); err != nil {
			m.err = err.Error()
			return m, nil
		}
	}
	m.values = append(m.values, v)
	if m.at+1 < len(m.steps) {
		m.at++
		return m, m.begin()
	}
	done := msgs.PromptSubmittedMsg{Purpose: m.purpose, Values: m.values}
	m.Close()
	return m, func() tea.Msg { return done }
}

// View draws the prompt line (and the refusal under it, when there is one).
func (m Model) View(th *theme.Theme, width int) string {
	if !m.Active() {
		return ""
	}
	s := m.steps[m.at]
	label := th.Render(th.Key, s.Label+": ")
	m.input.SetWidth(max(10, width-ansi.StringWidth(label)-1))
	line := ansi.Truncate(label+m.input.View(), width, "…")
	if m.err != "" {
		line += "\n" + ansi.Truncate(th.Render(th.Error, m.err), width, "…")
	}
	return line
}

// Lines is how many lines the view takes.
func (m Model) Lines() int {
	switch {
	case !m.Active():
		return 0
	case m.err != "":
		return 2
	}
	return 1
}
