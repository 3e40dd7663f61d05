package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/netsleuth/netsleuth/model"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",cdata"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// WriteJUnit writes r as JUnit XML: one testsuite per probe and one testcase
// per finding. Fail and error findings carry a failure with the root cause,
// evidence and fixes; skips are skipped; warnings pass with the details in
// system-out.
func WriteJUnit(w io.Writer, r *model.Report) error {
	out := junitSuites{Name: "netsleuth", Time: fmt.Sprintf("%.3f", float64(r.DurationMs)/1000)}
	idx := map[string]int{}
	for _, f := range r.Findings {
		i, ok := idx[f.Probe]
		if !ok {
			i = len(out.Suites)
			idx[f.Probe] = i
			out.Suites = append(out.Suites, junitSuite{Name: f.Probe})
		}
		s := &out.Suites[i]
		c := junitCase{Name: caseName(f), Classname: "netsleuth." + f.Probe}
		switch {
		case f.Status.Failing():
			c.Failure = &junitFailure{Message: f.RootCause, Type: string(f.Status), Body: details(f)}
			if f.CausedBy != "" {
				c.Failure.Message = "caused by " + f.CausedBy + ": " + f.RootCause
			}
			s.Failures++
		case f.Status == model.StatusSkip:
			c.Skipped = &junitSkipped{Message: firstNonEmpty(f.RootCause, f.Title)}
			s.Skipped++
		case f.Status == model.StatusWarn:
			c.SystemOut = &junitText{Text: "WARN: " + details(f)}
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
	}
	for _, s := range out.Suites {
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Skipped += s.Skipped
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	return nil
}

func caseName(f model.Finding) string {
	n := f.ID + ": " + f.Title
	if f.Subject != nil {
		n += " [" + f.Subject.String() + "]"
	}
	return n
}

// details renders a finding's root cause, evidence and fixes as plain text.
func details(f model.Finding) string {
	var b strings.Builder
	if f.CausedBy != "" {
		fmt.Fprintf(&b, "Caused by: %s (fix that finding and this one follows)\n", f.CausedBy)
	}
	if f.RootCause != "" {
		fmt.Fprintf(&b, "Root cause: %s\n", f.RootCause)
	}
	if len(f.Evidence) > 0 {
		b.WriteString("Evidence:\n")
		for _, e := range f.Evidence {
			fmt.Fprintf(&b, "  - %s\n", e)
		}
	}
	for i, fx := range f.Fixes {
		where := ""
		if fx.Node != "" {
			where = " (on node " + fx.Node + ")"
		}
		fmt.Fprintf(&b, "Fix %d%s: %s\n", i+1, where, fx.Description)
		if fx.Manifest != "" {
			b.WriteString(indent(strings.TrimRight(fx.Manifest, "\n"), "    ") + "\n")
		}
		for _, c := range fx.Commands {
			fmt.Fprintf(&b, "  $ %s\n", c)
		}
	}
	return b.String()
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func indent(s, pfx string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pfx + l
		}
	}
	return strings.Join(lines, "\n")
}
