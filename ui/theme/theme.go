// Package theme holds the TUI's styles. One Theme serves every pane; it is
// plain (no escape codes at all) when colour is off (NO_COLOR, tests), and
// picks light or dark variants from the terminal's background otherwise.
package theme

import (
	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"

	"github.com/netsleuth/netsleuth/model"
)

// Theme is the set of styles the panes render with.
type Theme struct {
	Color bool // false: every style is empty
	Dark  bool

	Title, Heading, Label, Faint, Command, Key, Link lipgloss.Style
	Selected, Focused, Tab, TabActive, Rule          lipgloss.Style
	Message, Error                                   lipgloss.Style
	status                                           map[model.Status]lipgloss.Style
	Help                                             help.Styles
}

// New returns the theme for a terminal: color false renders plain text;
// dark says the terminal's background is dark.
func New(color, dark bool) *Theme {
	t := &Theme{Color: color, Dark: dark, status: map[model.Status]lipgloss.Style{}}
	if !color {
		return t
	}
	ld := lipgloss.LightDark(dark)
	fg := func(light, dark string) lipgloss.Style {
		return lipgloss.NewStyle().Foreground(ld(lipgloss.Color(light), lipgloss.Color(dark)))
	}
	t.Title = fg("4", "12").Bold(true)
	t.Heading = fg("4", "12").Bold(true)
	t.Label = lipgloss.NewStyle().Bold(true)
	t.Faint = fg("8", "245")
	t.Command = fg("6", "14")
	t.Key = fg("5", "13").Bold(true)
	t.Link = fg("4", "12").Underline(true)
	t.Selected = lipgloss.NewStyle().Background(ld(lipgloss.Color("254"), lipgloss.Color("237"))).Bold(true)
	t.Focused = fg("4", "12").Bold(true)
	t.Tab = fg("8", "245")
	t.TabActive = fg("4", "12").Bold(true).Underline(true)
	t.Rule = fg("250", "238")
	t.Message = fg("2", "10")
	t.Error = fg("1", "9").Bold(true)
	t.status[model.StatusPass] = fg("2", "10")
	t.status[model.StatusWarn] = fg("3", "11")
	t.status[model.StatusFail] = fg("1", "9").Bold(true)
	t.status[model.StatusError] = fg("5", "13").Bold(true)
	t.status[model.StatusSkip] = fg("8", "245")
	t.Help = help.DefaultStyles(dark)
	return t
}

// Render applies st to s, or returns s unchanged on a plain theme.
func (t *Theme) Render(st lipgloss.Style, s string) string {
	if !t.Color || s == "" {
		return s
	}
	return st.Render(s)
}

// Status renders s in the colour of status st.
func (t *Theme) Status(st model.Status, s string) string {
	return t.Render(t.status[st], s)
}

// Mark is a status's one-cell mark: ✓ ✗ ! – (✗ for errors too).
func Mark(st model.Status) string {
	switch st {
	case model.StatusPass:
		return "✓"
	case model.StatusWarn:
		return "!"
	case model.StatusFail, model.StatusError:
		return "✗"
	}
	return "–"
}

// Word is a status's word, fixed width: PASS, FAIL, WARN, SKIP, ERROR.
func Word(st model.Status) string {
	switch st {
	case model.StatusPass:
		return "PASS "
	case model.StatusWarn:
		return "WARN "
	case model.StatusFail:
		return "FAIL "
	case model.StatusError:
		return "ERROR"
	}
	return "SKIP "
}

// Badge is mark and word, coloured: "✗ FAIL ".
func (t *Theme) Badge(st model.Status) string {
	return t.Status(st, Mark(st)+" "+Word(st))
}
