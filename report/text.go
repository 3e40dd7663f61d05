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
// then the root causes, each with its evidence, fixes and the symptoms it
// causes, then every finding by probe. Passes and skips take one line; a
// root cause or a symptom there points back to its root cause; other
// findings show their subject, root cause, evidence and fixes. More than
// AggregateOver findings of one ID and status are one entry (the count,
// the first subjects, the fix once when it is the same for each); -o json
// lists every one.
func WriteText(w io.Writer, r *model.Report, color bool) error {
	s := newTextStyles(color)
	var b strings.Builder
	writeHeader(&b, s, r)
	writeTrace(&b, s, r)
	roots := RootCauseGroups(r)
	num := map[string]int{}
	if len(roots) > 0 {
		fmt.Fprintf(&b, "\n%s\n", s.render(s.heading, "ROOT CAUSES (fix these first)"))
		for i, g := range roots {
			for _, f := range g.Findings {
				num[f.Key] = i + 1
			}
			fmt.Fprintf(&b, "[%d] ", i+1)
			writeGroup(&b, s, g)
			writeSymptoms(&b, s, GroupSymptoms(r, g))
		}
		fmt.Fprintf(&b, "\n%s\n", s.render(s.heading, "ALL FINDINGS BY PROBE"))
	}
	class := func(f model.Finding) string {
		switch {
		case num[f.Key] > 0:
			return "root"
		case f.CausedBy != "":
			return "symptom"
		}
		return ""
	}
	for _, fs := range byProbe(r.Findings) {
		fmt.Fprintf(&b, "\n%s\n", s.render(s.heading, fs[0].Probe))
		for _, g := range groupFindings(fs, class) {
			writeListed(&b, s, r, g, num)
		}
	}
	// Colours are the 16 basic ANSI ones, so there is nothing to downsample.
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write text report: %w", err)
	}
	return nil
}

// byProbe splits findings into runs of one probe, in report order.
func byProbe(fs []model.Finding) [][]model.Finding {
	var out [][]model.Finding
	for i, f := range fs {
		if i == 0 || f.Probe != fs[i-1].Probe {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], f)
	}
	return out
}

// writeListed writes a group of the by-probe list: a root cause or a
// symptom points back to its root cause, others are written in full.
func writeListed(b *strings.Builder, s textStyles, r *model.Report, g Group, num map[string]int) {
	f := g.First()
	title := f.Title
	if g.Aggregate() {
		title = groupTitle(g)
	}
	head := fmt.Sprintf("%s %s  %s\n", s.badge(f.Status), title, s.render(s.faint, "("+f.ID+")"))
	switch {
	case num[f.Key] > 0:
		b.WriteString(head)
		fmt.Fprintf(b, "%s%s\n", pad, s.render(s.label, fmt.Sprintf("root cause %s above", causeNumbers(g, num, func(f model.Finding) string { return f.Key }))))
	case f.CausedBy != "":
		b.WriteString(head)
		if g.Aggregate() {
			fmt.Fprintf(b, "%s%s %s\n", pad, s.render(s.label, "caused by root cause"), causeNumbers(g, num, func(f model.Finding) string { return f.CausedBy }))
			break
		}
		cause, _ := r.Find(f.CausedBy)
		fmt.Fprintf(b, "%s%s [%d] %s\n", pad, s.render(s.label, "caused by root cause"), num[f.CausedBy], cause.Title)
	default:
		writeGroup(b, s, g)
	}
}

// causeNumbers lists the distinct root-cause numbers of a group's findings:
// "[3]" or "[2], [5]".
func causeNumbers(g Group, num map[string]int, key func(model.Finding) string) string {
	var out []string
	seen := map[int]bool{}
	for _, f := range g.Findings {
		if n := num[key(f)]; !seen[n] {
			seen[n] = true
			out = append(out, fmt.Sprintf("[%d]", n))
		}
	}
	return strings.Join(out, ", ")
}

// writeGroup writes one finding in full, or an aggregate entry.
func writeGroup(b *strings.Builder, s textStyles, g Group) {
	if !g.Aggregate() {
		writeFinding(b, s, g.First())
		return
	}
	f := g.First()
	fmt.Fprintf(b, "%s %s  %s\n", s.badge(f.Status), groupTitle(g), s.render(s.faint, "("+f.ID+")"))
	fmt.Fprintf(b, "%s%s %s\n", pad, s.render(s.label, "e.g.:"), f.Title)
	if f.Status != model.StatusPass && f.Status != model.StatusSkip {
		if rc, ok := sharedRootCause(g); ok {
			fmt.Fprintf(b, "%s%s %s\n", pad, s.render(s.label, "root cause (each):"), rc)
		} else if f.RootCause != "" {
			fmt.Fprintf(b, "%s%s %s\n", pad, s.render(s.label, "root cause ("+subjectName(f)+"):"), f.RootCause)
		}
		if fixes, ok := sharedFixes(g); ok {
			writeFixes(b, s, fixes, " (each, with its own name)")
		} else {
			writeFixes(b, s, f.Fixes, " ("+subjectName(f)+"; the others' differ)")
		}
	}
	fmt.Fprintf(b, "%s%s\n", pad, s.render(s.faint, fmt.Sprintf("all %s with their evidence: -o json", count(len(g.Findings)))))
}

// RootCauses are the findings that are no symptom and either fail or have
// symptoms, in report order.
func RootCauses(r *model.Report) []model.Finding {
	cited := map[string]bool{}
	for _, f := range r.Findings {
		if f.CausedBy != "" {
			cited[f.CausedBy] = true
		}
	}
	var out []model.Finding
	for _, f := range r.Findings {
		if f.CausedBy == "" && (f.Status.Failing() || cited[f.Key]) {
			out = append(out, f)
		}
	}
	return out
}

const pad = "        "

func writeSymptoms(b *strings.Builder, s textStyles, gs []Group) {
	n := 0
	for _, g := range gs {
		n += len(g.Findings)
	}
	if n == 0 {
		return
	}
	fmt.Fprintf(b, "%s%s\n", pad, s.render(s.label, fmt.Sprintf("symptoms (%s):", count(n))))
	for _, g := range gs {
		f := g.First()
		if g.Aggregate() {
			fmt.Fprintf(b, "%s  - %s %s: %s\n", pad, strings.ToUpper(string(f.Status)), f.Probe, groupTitle(g))
			continue
		}
		subj := ""
		if f.Subject != nil {
			subj = " [" + f.Subject.String() + "]"
		}
		fmt.Fprintf(b, "%s  - %s %s: %s%s\n", pad, strings.ToUpper(string(f.Status)), f.Probe, f.Title, subj)
	}
}

func writeHeader(b *strings.Builder, s textStyles, r *model.Report) {
	c := r.Cluster
	cni := ""
	if c.CNI != "" {
		cni = ", CNI " + c.CNI
	}
	fmt.Fprintf(b, "%s context %s, server %s, version %s%s\n", s.render(s.label, "netsleuth report:"),
		orDash(c.Context), orDash(c.Server), orDash(c.Version), cni)
	sum := r.Summary
	dur := (time.Duration(r.DurationMs) * time.Millisecond).Round(100 * time.Millisecond)
	fmt.Fprintf(b, "%s findings in %s: %s pass, %s warn, %s fail, %s error, %s skip\n",
		count(len(r.Findings)), dur, count(sum.Pass), count(sum.Warn), count(sum.Fail), count(sum.Error), count(sum.Skip))
	if sum.RootCauses > 0 {
		roots := plural(sum.RootCauses, "root cause")
		if n := len(RootCauseGroups(r)); n < sum.RootCauses {
			roots += fmt.Sprintf(" (%s below)", plural(n, "entry"))
		}
		fmt.Fprintf(b, "%s\n", s.render(s.label, fmt.Sprintf("%s, %s", roots, plural(sum.Symptoms, "symptom"))))
	}
	if len(r.Findings) == 0 {
		b.WriteString("\nNo findings: no probe ran or none recorded a verdict.\n")
	}
}

func plural(n int, what string) string {
	switch {
	case n == 1:
		return "1 " + what
	case strings.HasSuffix(what, "y"):
		return count(n) + " " + strings.TrimSuffix(what, "y") + "ies"
	}
	return count(n) + " " + what + "s"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeFinding(b *strings.Builder, s textStyles, f model.Finding) {
	fmt.Fprintf(b, "%s %s  %s\n", s.badge(f.Status), f.Title, s.render(s.faint, "("+f.ID+")"))
	if f.Subject != nil {
		fmt.Fprintf(b, "%s%s %s\n", pad, s.render(s.label, "subject:"), f.Subject)
	}
	if f.RootCause != "" {
		fmt.Fprintf(b, "%s%s %s\n", pad, s.render(s.label, "root cause:"), f.RootCause)
	}
	if f.Status == model.StatusPass || f.Status == model.StatusSkip {
		return
	}
	writeEvidence(b, s, f.Evidence)
	writeFixes(b, s, f.Fixes, "")
	for _, ref := range f.References {
		fmt.Fprintf(b, "%s%s %s\n", pad, s.render(s.label, "see:"), ref)
	}
}

// writeEvidence writes evidence lines, the first ten of a long list.
func writeEvidence(b *strings.Builder, s textStyles, ev []string) {
	if len(ev) == 0 {
		return
	}
	fmt.Fprintf(b, "%s%s\n", pad, s.render(s.label, "evidence:"))
	shown := ev
	if len(ev) > maxEvidence {
		shown = ev[:shownSubjects]
	}
	for _, e := range shown {
		fmt.Fprintf(b, "%s  - %s\n", pad, e)
	}
	if len(shown) < len(ev) {
		fmt.Fprintf(b, "%s  %s\n", pad, s.render(s.faint, fmt.Sprintf("… %s more lines: -o json", count(len(ev)-len(shown)))))
	}
}

// writeFixes writes fixes, each label followed by note.
func writeFixes(b *strings.Builder, s textStyles, fixes []model.Fix, note string) {
	for i, fx := range fixes {
		where := ""
		if fx.Node != "" {
			where = ", on node " + fx.Node
		}
		fmt.Fprintf(b, "%s%s %s\n", pad, s.render(s.label, fmt.Sprintf("fix %d%s%s:", i+1, where, note)), fx.Description)
		if fx.Manifest != "" {
			for _, l := range strings.Split(strings.TrimRight(fx.Manifest, "\n"), "\n") {
				fmt.Fprintf(b, "%s    %s\n", pad, s.render(s.command, l))
			}
			if len(fx.Commands) > 0 {
				fmt.Fprintf(b, "%s  %s\n", pad, s.render(s.label, "then:"))
			}
		}
		for _, c := range fx.Commands {
			fmt.Fprintf(b, "%s    %s\n", pad, s.render(s.command, "$ "+c))
		}
	}
}

// writeTrace renders a traced connection as a chain of hops, the first
// broken one opened with its root cause and fixes.
func writeTrace(b *strings.Builder, s textStyles, r *model.Report) {
	t := r.Trace
	if t == nil {
		return
	}
	fmt.Fprintf(b, "\n%s\n", s.render(s.heading, "TRACE "+t.From+" → "+t.To))
	marks := map[model.Status]string{model.StatusPass: "✓", model.StatusFail: "✗", model.StatusError: "✗", model.StatusWarn: "!", model.StatusSkip: "–"}
	for i, k := range t.Hops {
		f, ok := r.Find(k)
		if !ok {
			continue
		}
		fmt.Fprintf(b, "  %s %d %s %s\n", marks[f.Status], i+1, s.badge(f.Status), f.Title)
		if k != t.Broken {
			continue
		}
		fmt.Fprintf(b, "%s%s\n", pad, s.render(s.label, "← the first broken hop"))
		if f.CausedBy != "" {
			if c, ok := r.Find(f.CausedBy); ok {
				fmt.Fprintf(b, "%s%s %s (%s)\n", pad, s.render(s.label, "because:"), c.Title, c.ID)
				f.Evidence = append(f.Evidence, c.Evidence...)
			}
		}
		f.Title = "details"
		writeFinding(b, s, f)
	}
	if t.Broken == "" {
		fmt.Fprintf(b, "  %s\n", s.render(s.label, "every hop passes"))
	}
}
