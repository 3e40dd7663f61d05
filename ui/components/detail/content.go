package detail

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/components/dnschain"
	"github.com/netsleuth/netsleuth/ui/components/flows"
	"github.com/netsleuth/netsleuth/ui/components/podgrid"
	"github.com/netsleuth/netsleuth/ui/components/policywalk"
	"github.com/netsleuth/netsleuth/ui/components/tracechain"
	"github.com/netsleuth/netsleuth/ui/state"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// page collects the lines of the detail pane. Prose is wrapped to the
// width; commands, manifests and table rows never are.
type page struct {
	th       *theme.Theme
	width    int
	compact  bool // no blank line between sections (short panes)
	grid     bool // a pod-to-pod matrix is shown: its pair lines are not repeated
	lines    []string
	fixLines []int
}

func (p *page) add(lines ...string) { p.lines = append(p.lines, lines...) }

// prose adds s wrapped to the width, the first line after first, the others
// indented by rest.
func (p *page) prose(first, rest, s string) {
	w := max(10, p.width-max(ansi.StringWidth(first), ansi.StringWidth(rest)))
	for i, l := range strings.Split(ansi.Wordwrap(s, w, ""), "\n") {
		if i == 0 {
			p.add(first + l)
		} else {
			p.add(rest + l)
		}
	}
}

func (p *page) heading(s string) {
	if len(p.lines) > 0 && !p.compact {
		p.add("")
	}
	p.add(p.th.Render(p.th.Heading, s))
}

// finding renders one finding: what it is, what causes it, the root cause,
// the views that suit its evidence, the evidence, the fixes (the selected
// one marked), references, and the symptoms it causes.
func (p *page) finding(f model.Finding, r *model.Report, selectedFix int) {
	th := p.th
	p.prose(th.Badge(f.Status)+" ", "        ", th.Render(th.Label, f.Title))
	meta := []string{f.ID, "probe " + f.Probe}
	if f.Subject != nil {
		meta = append(meta, f.Subject.String())
	}
	p.prose("", "", th.Render(th.Faint, strings.Join(meta, " · ")))
	if f.CausedBy != "" {
		cause, _ := r.Find(f.CausedBy)
		p.prose(th.Render(th.Label, "caused by: "), "  ", th.Status(cause.Status, theme.Word(cause.Status))+" "+cause.Title+" ("+cause.ID+")")
	}
	if f.RootCause != "" {
		p.heading("Root cause")
		p.prose("  ", "  ", f.RootCause)
	}
	p.views(f, r)
	p.evidence(f.Evidence)
	p.fixes(f.Fixes, selectedFix)
	if len(f.References) > 0 {
		p.heading("References")
		for _, ref := range f.References {
			p.add("  " + th.Render(th.Link, ref))
		}
	}
	if syms := r.Symptoms(f.Key); len(syms) > 0 {
		p.heading(fmt.Sprintf("Symptoms (%d)", len(syms)))
		for _, s := range syms {
			p.prose("  "+th.Badge(s.Status)+" ", "          ", s.Probe+": "+s.Title)
		}
	}
}

// views adds the views that suit the finding's evidence.
func (p *page) views(f model.Finding, r *model.Report) {
	if w, ok := policywalk.Parse(f); ok {
		p.heading("Rule walk")
		p.add(policywalk.Render(w, p.th, p.width)...)
	}
	// The matrix reads pod-to-pod's pair lines only (external writes lines
	// of the same shape towards off-cluster targets); a root cause shows
	// the matrix of the pod-to-pod symptoms it causes.
	var ev []string
	for _, g := range append([]model.Finding{f}, r.Symptoms(f.Key)...) {
		if g.Probe == podgrid.Probe {
			ev = append(ev, g.Evidence...)
		}
	}
	if g := podgrid.Parse(ev); !g.Empty() {
		p.heading("Pod-to-pod matrix")
		p.add(podgrid.Render(g, p.th, p.width)...)
		p.grid = true
	}
	if tracechain.IsHop(f) {
		if c, ok := tracechain.Parse(r); ok {
			p.heading("Trace")
			p.add(tracechain.Render(c, p.th, p.width, f.Key)...)
		}
	}
	if t := flows.Parse(f.Evidence); !t.Empty() {
		p.heading(fmt.Sprintf("Capture (%d flows)", len(t.Flows)))
		p.add(flows.Render(t, p.th, p.width)...)
	}
}

// evidence adds the evidence lines that no table above shows.
func (p *page) evidence(ev []string) {
	var rest []string
	pairs := 0
	for _, e := range ev {
		switch {
		case flows.IsCaptureLine(e):
		case p.grid && podgrid.IsPairLine(e):
			pairs++
		default:
			rest = append(rest, e)
		}
	}
	if len(rest) == 0 && pairs == 0 {
		return
	}
	p.heading("Evidence")
	for _, e := range rest {
		p.prose("  • ", "    ", e)
	}
	if pairs > 0 {
		p.prose("  ", "  ", p.th.Render(p.th.Faint, fmt.Sprintf("(%d measurement line(s) are the matrix above; `check -o text` lists them whole)", pairs)))
	}
}

// fixes adds every fix: its description wrapped, then its manifest and its
// commands, one command per line and never wrapped (a command of several
// lines keeps its lines).
func (p *page) fixes(fixes []model.Fix, selected int) {
	if len(fixes) == 0 {
		return
	}
	th := p.th
	p.heading("Fixes" + th.Render(th.Faint, "  (c copies the marked one; [ and ] choose)"))
	for i, fx := range fixes {
		mark := "  "
		if i == selected {
			mark = th.Render(th.Key, "▶ ")
		}
		head := fmt.Sprintf("%d", i+1)
		if fx.Node != "" {
			head += " on node " + fx.Node
		}
		p.fixLines = append(p.fixLines, len(p.lines))
		p.prose(mark+th.Render(th.Label, head+":")+" ", "    ", fx.Description)
		if fx.Manifest != "" {
			for _, l := range strings.Split(strings.TrimRight(fx.Manifest, "\n"), "\n") {
				p.add("      " + th.Render(th.Command, l))
			}
			if len(fx.Commands) > 0 {
				p.add("    " + th.Render(th.Label, "then:"))
			}
		}
		for _, c := range fx.Commands {
			for j, l := range strings.Split(c, "\n") {
				lead := "$ "
				if j > 0 {
					lead = "  "
				}
				p.add("      " + th.Render(th.Command, lead+l))
			}
		}
	}
}

// probe renders a probe: what it checks, where its run is, the view that
// suits its findings, and its findings one per line.
func (p *page) probe(pr *state.Probe, r *model.Report, now time.Time, spin string) {
	th := p.th
	in := pr.Info
	p.prose("", "", th.Render(th.Label, in.ID)+" · "+in.Title+th.Render(th.Faint, " (scenario "+in.Scenario+")"))
	if in.Description != "" {
		p.prose("", "", th.Render(th.Faint, in.Description))
	}
	d := state.Seconds(pr.Duration(now))
	switch pr.Phase {
	case state.Pending:
		p.add("", "waiting for a free worker…")
	case state.Running:
		p.add("")
		p.prose(spin+" running "+d+": ", "  ", pr.Stage)
	case state.Done:
		p.add("", fmt.Sprintf("%sdone in %s · %s", th.Badge(pr.Worst()), d, counts(pr.Summary)))
	}
	p.probeViews(pr, r)
	if len(pr.Findings) > 0 {
		p.heading(fmt.Sprintf("Findings (%d)", len(pr.Findings)))
		for _, f := range pr.Findings {
			p.prose("  "+th.Badge(f.Status)+" ", "          ", f.Title)
		}
		p.add("", th.Render(th.Faint, "Select a finding in the list (↓, or → to unfold) for its evidence and fix."))
	}
}

func (p *page) probeViews(pr *state.Probe, r *model.Report) {
	var ev []string
	for _, f := range pr.Findings {
		ev = append(ev, f.Evidence...)
	}
	switch pr.Info.ID {
	case podgrid.Probe:
		if g := podgrid.Parse(ev); !g.Empty() {
			p.heading("Pod-to-pod matrix")
			p.add(podgrid.Render(g, p.th, p.width)...)
		}
	case "dns":
		if cs := dnschain.Parse(pr.Findings); len(cs) > 0 {
			p.heading("DNS hops")
			p.add(dnschain.Render(cs, p.th, p.width)...)
		}
	case "policy":
		for _, f := range pr.Findings {
			if w, ok := policywalk.Parse(f); ok {
				p.heading("Rule walk")
				p.add(policywalk.Render(w, p.th, p.width)...)
			}
		}
	case "trace":
		if c, ok := tracechain.Parse(r); ok {
			p.heading("Trace")
			p.add(tracechain.Render(c, p.th, p.width, "")...)
		}
	}
}

// counts is "2 fail, 1 pass": the non-zero counts, worst first.
func counts(s model.Summary) string {
	var parts []string
	for _, c := range []struct {
		n    int
		word string
	}{{s.Error, "error"}, {s.Fail, "fail"}, {s.Warn, "warn"}, {s.Pass, "pass"}, {s.Skip, "skip"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.word))
		}
	}
	if len(parts) == 0 {
		return "no findings"
	}
	return strings.Join(parts, ", ")
}
