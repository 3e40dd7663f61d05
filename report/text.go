package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"charm.land/lipgloss/v2"

	"github.com/netsleuth/netsleuth/model"
)

// textStyles styles the text report; the zero value renders plain text.
type textStyles struct {
	color   bool
	heading lipgloss.Style
	label   lipgloss.Style
	command lipgloss.Style
	faint   lipgloss.Style
	badges  map[model.Status]lipgloss.Style
}

func newTextStyles(color bool) textStyles {
	if !color {
		return textStyles{}
	}
	badge := func(c string) lipgloss.Style {
		return lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("0")).Background(lipgloss.Color(c))
	}
	return textStyles{
		color:   true,
		heading: lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("4")),
		label:   lipgloss.NewStyle().Bold(true),
		command: lipgloss.NewStyle().Foreground(lipgloss.Color("6")),
		faint:   lipgloss.NewStyle().Faint(true),
		badges: map[model.Status]lipgloss.Style{
			model.StatusPass:  badge("2"),
			model.StatusWarn:  badge("3"),
			model.StatusFail:  badge("1"),
			model.StatusError: badge("5"),
			model.StatusSkip:  badge("8"),
		},
	}
}

func (s textStyles) render(st lipgloss.Style, text string) string {
	if !s.color {
		return text
	}
	return st.Render(text)
}

// Badge renders a fixed-width status badge such as " FAIL ".
func (s textStyles) badge(st model.Status) string {
	return s.render(s.badges[st], fmt.Sprintf(" %-5s ", strings.ToUpper(string(st))))
}

// WriteText writes r for people: a header with the cluster and the counts,
// then the findings grouped by probe. Passes and skips take one line; other
// findings show their subject, root cause, evidence and fixes.
func WriteText(w io.Writer, r *model.Report, color bool) error {
	s := newTextStyles(color)
	var b strings.Builder
	writeHeader(&b, s, r)
	probe := ""
	for _, f := range r.Findings {
		if f.Probe != probe {
			probe = f.Probe
			fmt.Fprintf(&b, "\n%s\n", s.render(s.heading, probe))
		}
		writeFinding(&b, s, f)
	}
	// Colours are the 16 basic ANSI ones, so there is nothing to downsample.
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write text report: %w", err)
	}
	return nil
}

func writeHeader(b *strings.Builder, s textStyles, r *model.Report) {
	c := r.Cluster
	fmt.Fprintf(b, "%s context %s, server %s, version %s\n", s.render(s.label, "netsleuth report:"),
		orDash(c.Context), orDash(c.Server), orDash(c.Version))
	sum := r.Summary
	dur := (time.Duration(r.DurationMs) * time.Millisecond).Round(100 * time.Millisecond)
	fmt.Fprintf(b, "%d findings in %s: %d pass, %d warn, %d fail, %d error, %d skip\n",
		len(r.Findings), dur, sum.Pass, sum.Warn, sum.Fail, sum.Error, sum.Skip)
	if len(r.Findings) == 0 {
		b.WriteString("\nNo findings: no probe ran or none recorded a verdict.\n")
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeFinding(b *strings.Builder, s textStyles, f model.Finding) {
	fmt.Fprintf(b, "%s %s  %s\n", s.badge(f.Status), f.Title, s.render(s.faint, "("+f.ID+")"))
	const pad = "        "
	if f.Subject != nil {
		fmt.Fprintf(b, "%s%s %s\n", pad, s.render(s.label, "subject:"), f.Subject)
	}
	if f.RootCause != "" {
		fmt.Fprintf(b, "%s%s %s\n", pad, s.render(s.label, "root cause:"), f.RootCause)
	}
	if f.Status == model.StatusPass || f.Status == model.StatusSkip {
		return
	}
	if len(f.Evidence) > 0 {
		fmt.Fprintf(b, "%s%s\n", pad, s.render(s.label, "evidence:"))
		for _, e := range f.Evidence {
			fmt.Fprintf(b, "%s  - %s\n", pad, e)
		}
	}
	for i, fx := range f.Fixes {
		fmt.Fprintf(b, "%s%s %s\n", pad, s.render(s.label, fmt.Sprintf("fix %d:", i+1)), fx.Description)
		for _, c := range fx.Commands {
			fmt.Fprintf(b, "%s    %s\n", pad, s.render(s.command, "$ "+c))
		}
		if fx.Manifest != "" {
			for _, l := range strings.Split(strings.TrimRight(fx.Manifest, "\n"), "\n") {
				fmt.Fprintf(b, "%s    %s\n", pad, s.render(s.command, l))
			}
		}
	}
	for _, ref := range f.References {
		fmt.Fprintf(b, "%s%s %s\n", pad, s.render(s.label, "see:"), ref)
	}
}
