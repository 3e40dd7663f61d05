// Package tracechain renders a traced connection (netsleuth trace, the
// trace probe) as a vertical chain of its hops, in the order the connection
// meets them, with the first broken hop opened: its root cause, the shared
// finding that causes it, and its first fix.
package tracechain

import (
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/trace"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// Chain is the hops of one trace.
type Chain struct {
	From, To string
	Hops     []model.Finding
	Broken   string // the first broken hop's key
	Cause    *model.Finding
}

// IsHop reports whether a finding is a trace hop.
func IsHop(f model.Finding) bool { return f.Probe == trace.ID && slices.Contains(trace.Hops, f.ID) }

// Parse builds the chain from a report: its Trace when it has one, else the
// trace probe's hop findings in hop order. ok is false without hops.
func Parse(r *model.Report) (Chain, bool) {
	var c Chain
	if t := r.Trace; t != nil {
		c.From, c.To, c.Broken = t.From, t.To, t.Broken
		for _, k := range t.Hops {
			if f, ok := r.Find(k); ok {
				c.Hops = append(c.Hops, f)
			}
		}
	} else {
		for _, id := range trace.Hops {
			for _, f := range r.Findings {
				if f.ID == id && f.Probe == trace.ID {
					c.Hops = append(c.Hops, f)
					if c.Broken == "" && f.Status.Failing() {
						c.Broken = f.Key
					}
				}
			}
		}
		if len(c.Hops) > 0 && c.Hops[0].Subject != nil {
			c.From, c.To, _ = strings.Cut(c.Hops[0].Subject.Name, " -> ")
		}
	}
	for _, f := range c.Hops {
		if f.Key == c.Broken && f.CausedBy != "" {
			if cause, ok := r.Find(f.CausedBy); ok {
				c.Cause = &cause
			}
		}
	}
	return c, len(c.Hops) > 0
}

// Render draws the chain width cells wide; selected, when it is a hop's
// key, is marked.
func Render(c Chain, th *theme.Theme, width int, selected string) []string {
	out := []string{th.Render(th.Label, "TRACE "+c.From+" → "+c.To)}
	for i, f := range c.Hops {
		if i > 0 {
			out = append(out, th.Render(th.Faint, bar))
		}
		mark := " "
		if f.Key == selected {
			mark = "▸"
		}
		line := mark + strconv.Itoa(i+1) + " " + th.Badge(f.Status) + " " + f.Title
		out = append(out, ansi.Truncate(line, width, "…"))
		if f.Key == c.Broken {
			out = append(out, opened(c, f, th, width)...)
		}
	}
	if c.Broken == "" {
		out = append(out, "  "+th.Status(model.StatusPass, "every hop passes"))
	}
	return out
}

// bar joins the hops, under their marks.
const bar = "   │"

// opened is the broken hop's explanation, indented under it.
func opened(c Chain, f model.Finding, th *theme.Theme, width int) []string {
	var out []string
	add := func(s string) {
		for _, l := range strings.Split(ansi.Wordwrap(s, max(20, width-len(bar)-3), ""), "\n") {
			out = append(out, th.Render(th.Faint, bar)+"   "+l)
		}
	}
	out = append(out, th.Render(th.Faint, bar)+"   "+th.Render(th.Error, "← the first broken hop"))
	if c.Cause != nil {
		add(th.Render(th.Label, "because: ") + c.Cause.Title + " (" + c.Cause.ID + ")")
	}
	if f.RootCause != "" {
		add(th.Render(th.Label, "root cause: ") + f.RootCause)
	}
	if len(f.Fixes) > 0 {
		fx := f.Fixes[0]
		add(th.Render(th.Label, "fix: ") + fx.Description)
		for _, cmd := range fx.Commands {
			for _, l := range strings.Split(cmd, "\n") {
				out = append(out, th.Render(th.Faint, bar)+"     "+th.Render(th.Command, "$ "+l))
			}
		}
	}
	return out
}
