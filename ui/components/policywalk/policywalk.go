// Package policywalk renders a NetworkPolicy answer as the walk the policy
// engine made: egress at the source, ingress at the destination, then the
// live traffic that checked it, each step with its verdict, and the answer.
// It reads the policy.verdict finding's evidence ("egress: …", "ingress: …",
// "sender: …", "verified live: …", "live traffic contradicts …").
package policywalk

import (
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// ID is the finding this view explains.
const ID = "policy.verdict"

// Step is one step of the walk.
type Step struct {
	Name   string // egress, ingress, live
	Status model.Status
	Text   string
}

// Walk is a verdict's walk.
type Walk struct {
	Question string // the finding's title: "denied: a -> b on tcp/80"
	Answer   model.Status
	Steps    []Step
	Sender   string
}

// Parse reads the walk from a policy.verdict finding; ok is false for
// other findings.
func Parse(f model.Finding) (Walk, bool) {
	if f.ID != ID {
		return Walk{}, false
	}
	w := Walk{Question: f.Title, Answer: f.Status}
	for _, l := range f.Evidence {
		switch {
		case strings.HasPrefix(l, "egress: "), strings.HasPrefix(l, "ingress: "):
			name, text, _ := strings.Cut(l, ": ")
			w.Steps = append(w.Steps, Step{Name: name, Status: stepStatus(text), Text: text})
		case strings.HasPrefix(l, "sender: "):
			w.Sender = strings.TrimPrefix(l, "sender: ")
		case strings.HasPrefix(l, "verified live: "):
			w.Steps = append(w.Steps, Step{Name: "live", Status: model.StatusPass, Text: strings.TrimPrefix(l, "verified live: ")})
		case strings.HasPrefix(l, "live traffic contradicts this verdict: "):
			w.Steps = append(w.Steps, Step{Name: "live", Status: model.StatusFail, Text: strings.TrimPrefix(l, "live traffic contradicts this verdict: ")})
		case strings.HasPrefix(l, "not verified live: "):
			w.Steps = append(w.Steps, Step{Name: "live", Status: model.StatusSkip, Text: strings.TrimPrefix(l, "not verified live: ")})
		}
	}
	return w, len(w.Steps) > 0
}

// stepStatus reads a direction's sentence: allowed (not isolated, exempt
// or admitted by a rule) or denied (no rule admits it).
func stepStatus(text string) model.Status {
	if strings.Contains(text, "no rule of") {
		return model.StatusFail
	}
	return model.StatusPass
}

// Render draws the walk: numbered steps with their verdict, the sentence
// wrapped under them, and the answer.
func Render(w Walk, th *theme.Theme, width int) []string {
	out := []string{th.Render(th.Label, "NetworkPolicy walk: "+w.Question)}
	for i, s := range w.Steps {
		word := "allowed"
		switch s.Status {
		case model.StatusFail:
			word = "denied"
			if s.Name == "live" {
				word = "contradicts"
			}
		case model.StatusSkip:
			word = "not checked"
		case model.StatusPass:
			if s.Name == "live" {
				word = "agrees"
			}
		}
		out = append(out, "  "+th.Status(s.Status, theme.Mark(s.Status))+" "+strconv.Itoa(i+1)+" "+th.Render(th.Label, s.Name)+" "+th.Status(s.Status, word))
		for _, l := range strings.Split(ansi.Wordwrap(s.Text, max(20, width-6), ""), "\n") {
			out = append(out, "      "+l)
		}
	}
	if w.Sender != "" {
		for _, l := range strings.Split(ansi.Wordwrap("sent by "+w.Sender, max(20, width-6), ""), "\n") {
			out = append(out, th.Render(th.Faint, "      "+l))
		}
	}
	answer := "allowed"
	if w.Answer != model.StatusPass {
		answer = "denied"
	}
	out = append(out, "  = "+th.Status(w.Answer, answer))
	return out
}
