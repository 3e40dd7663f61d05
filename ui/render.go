package ui

import (
	"fmt"
	"strings"

	"charm.land/lipgloss/v2"

	"github.com/netsleuth/netsleuth/model"
)

// styles is the TUI theme; newStyles(false) renders plain text for tests and
// NO_COLOR.
type styles struct {
	header, selected, faint, label, command lipgloss.Style
	status                                  map[model.Status]lipgloss.Style
}

func newStyles(color bool) styles {
	s := styles{status: map[model.Status]lipgloss.Style{}}
	if !color {
		for _, st := range []model.Status{model.StatusPass, model.StatusWarn, model.StatusFail, model.StatusError, model.StatusSkip} {
			s.status[st] = lipgloss.NewStyle()
		}
		return s
	}
	s.header = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("4"))
	s.selected = lipgloss.NewStyle().Bold(true).Reverse(true)
	s.faint = lipgloss.NewStyle().Faint(true)
	s.label = lipgloss.NewStyle().Bold(true)
	s.command = lipgloss.NewStyle().Foreground(lipgloss.Color("6"))
	s.status[model.StatusPass] = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	s.status[model.StatusWarn] = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	s.status[model.StatusFail] = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
	s.status[model.StatusError] = lipgloss.NewStyle().Foreground(lipgloss.Color("5")).Bold(true)
	s.status[model.StatusSkip] = lipgloss.NewStyle().Faint(true)
	return s
}

// screen is the input of the pure renderer.
type screen struct {
	width, height int
	cluster       model.Cluster
	runID         string
	probes        []probeState
	selected      int
	spinner       string // current spinner frame
	finished      bool
	quitting      bool
}

// listWidth is the width of the probe list pane.
const listWidth = 38

// render draws the whole screen as a string of exactly s.height lines at most.
func render(s screen, st styles) string {
	if s.width < 40 || s.height < 8 {
		return "netsleuth needs a terminal of at least 40×8"
	}
	body := s.height - 3
	list := fit(renderList(s, st), listWidth, body)
	detail := "no probe selected"
	if s.selected >= 0 && s.selected < len(s.probes) {
		detail = renderDetail(s.probes[s.selected], st)
	}
	detail = fit(detail, s.width-listWidth-2, body)
	sep := strings.TrimSuffix(strings.Repeat("│ \n", body), "\n")
	panes := lipgloss.JoinHorizontal(lipgloss.Top, list, st.faint.Render(sep), detail)
	return strings.Join([]string{renderHeader(s, st), panes, "", renderFooter(s, st)}, "\n")
}

// fit wraps str to width and pads or cuts it to exactly height lines.
func fit(str string, width, height int) string {
	str = lipgloss.NewStyle().Width(width).Render(str)
	lines := strings.Split(str, "\n")
	if len(lines) > height {
		lines = append(lines[:height-1], "…")
	}
	for len(lines) < height {
		lines = append(lines, "")
	}
	return lipgloss.NewStyle().Width(width).Render(strings.Join(lines, "\n"))
}

func renderHeader(s screen, st styles) string {
	done := 0
	var sum model.Summary
	for _, p := range s.probes {
		if p.phase == phaseDone {
			done++
		}
		addSummary(&sum, p.summary)
	}
	c := s.cluster
	h := fmt.Sprintf("netsleuth  run %s  %d/%d probes done  %s  │ %s %s %s", s.runID, done, len(s.probes), counts(sum, st), c.Context, c.Server, c.Version)
	return st.header.Render(truncate(h, s.width))
}

func addSummary(dst *model.Summary, s model.Summary) {
	dst.Pass += s.Pass
	dst.Warn += s.Warn
	dst.Fail += s.Fail
	dst.Error += s.Error
	dst.Skip += s.Skip
}

// counts renders "3 pass 1 warn 0 fail 0 error".
func counts(s model.Summary, st styles) string {
	return fmt.Sprintf("%s %s %s %s",
		st.status[model.StatusPass].Render(fmt.Sprintf("%d pass", s.Pass)),
		st.status[model.StatusWarn].Render(fmt.Sprintf("%d warn", s.Warn)),
		st.status[model.StatusFail].Render(fmt.Sprintf("%d fail", s.Fail)),
		st.status[model.StatusError].Render(fmt.Sprintf("%d error", s.Error)))
}

func renderFooter(s screen, st styles) string {
	msg := "↑/↓ select probe • q quit"
	switch {
	case s.quitting:
		msg = "cancelling: cleaning up what the probes created…"
	case s.finished:
		msg = "all probes finished • ↑/↓ select probe • q quit"
	}
	return st.faint.Render(truncate(msg, s.width))
}

// renderList draws one or two lines per probe: marker, icon, ID and counts,
// then the running stage.
func renderList(s screen, st styles) string {
	var b strings.Builder
	for i, p := range s.probes {
		icon := " "
		switch p.phase {
		case phaseRunning:
			icon = s.spinner
		case phaseDone:
			icon = st.status[p.worst()].Render(statusIcon(p.worst()))
		}
		line := fmt.Sprintf("%s %-16s %s", icon, truncate(p.info.ID, 16), shortCounts(p.summary))
		if i == s.selected {
			line = st.selected.Render("> " + line)
		} else {
			line = "  " + line
		}
		b.WriteString(line + "\n")
		if p.phase == phaseRunning && p.stage != "" {
			b.WriteString(st.faint.Render("    "+truncate(p.stage, listWidth-5)) + "\n")
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func statusIcon(s model.Status) string {
	switch s {
	case model.StatusPass:
		return "✓"
	case model.StatusWarn:
		return "!"
	case model.StatusFail:
		return "✗"
	case model.StatusError:
		return "E"
	}
	return "-"
}

func shortCounts(s model.Summary) string {
	return fmt.Sprintf("%d✓ %d! %d✗ %dE", s.Pass, s.Warn, s.Fail, s.Error)
}

// renderDetail draws the selected probe: title, description, then each
// finding with its root cause, evidence and fixes.
func renderDetail(p probeState, st styles) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  (%s, scenario %s)\n", st.label.Render(p.info.Title), p.info.ID, p.info.Scenario)
	if p.info.Description != "" {
		b.WriteString(st.faint.Render(p.info.Description) + "\n")
	}
	switch {
	case p.phase == phasePending:
		b.WriteString("\nwaiting for a free worker…\n")
	case p.phase == phaseRunning:
		fmt.Fprintf(&b, "\nrunning: %s\n", p.stage)
	case len(p.findings) == 0:
		b.WriteString("\nno findings recorded\n")
	}
	for _, f := range p.findings {
		b.WriteString("\n" + renderFinding(f, st))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func renderFinding(f model.Finding, st styles) string {
	var b strings.Builder
	badge := st.status[f.Status].Render(fmt.Sprintf("[%s]", strings.ToUpper(string(f.Status))))
	fmt.Fprintf(&b, "%s %s\n", badge, f.Title)
	if f.Subject != nil {
		fmt.Fprintf(&b, "  %s %s\n", st.label.Render("subject:"), f.Subject)
	}
	if f.RootCause != "" {
		fmt.Fprintf(&b, "  %s %s\n", st.label.Render("root cause:"), f.RootCause)
	}
	if f.Status == model.StatusPass || f.Status == model.StatusSkip {
		return b.String()
	}
	for _, e := range f.Evidence {
		fmt.Fprintf(&b, "  • %s\n", e)
	}
	for i, fx := range f.Fixes {
		fmt.Fprintf(&b, "  %s %s\n", st.label.Render(fmt.Sprintf("fix %d:", i+1)), fx.Description)
		for _, c := range fx.Commands {
			fmt.Fprintf(&b, "    %s\n", st.command.Render("$ "+c))
		}
		for _, l := range strings.Split(strings.TrimRight(fx.Manifest, "\n"), "\n") {
			if l != "" {
				fmt.Fprintf(&b, "    %s\n", st.command.Render(l))
			}
		}
	}
	return b.String()
}

// truncate cuts s to n cells, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if lipgloss.Width(s) <= n {
		return s
	}
	r := []rune(s)
	for len(r) > 0 && lipgloss.Width(string(r))+1 > n {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}
