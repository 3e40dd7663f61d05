// Package header is the TUI's top two lines: the cluster (context, server
// version, node count, CNI and kube-proxy mode, detected after the first
// frame), then the session (run state and elapsed time, probes done,
// counts by status, root causes and symptoms).
package header

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/common"
	"github.com/netsleuth/netsleuth/ui/state"
)

// Facts is what the cluster discovery found.
type Facts struct {
	Nodes     int
	CNI       string // kube.CNI's name and version: "Calico v3.31.0", "plain bridge", "unknown"
	ProxyMode string // iptables, ipvs, nftables, or "" when the API does not show it (kube.DiscoverKubeProxy)
	Err       error
}

// Run is the session's state as the header shows it.
type Run struct {
	State   string // "running", "done", "cleaning up…"
	Spinner string // the spinner frame while running
	Elapsed time.Duration
}

// Model is the header.
type Model struct {
	facts Facts
	known bool
}

// SetFacts records the discovery's result.
func (m *Model) SetFacts(f Facts) { m.facts, m.known = f, true }

// Facts returns the discovered facts and whether discovery has answered.
func (m *Model) Facts() (Facts, bool) { return m.facts, m.known }

// View draws the two lines, each cut to the width; below 100 columns the
// words get shorter so the root-cause count stays in sight.
func (m *Model) View(c *common.Context, s *state.Store, r Run) string {
	narrow := c.Width < 100
	return ansi.Truncate(m.cluster(c, narrow), c.Width, "…") + "\n" + ansi.Truncate(session(c, s, r, narrow), c.Width, "…")
}

func (m *Model) cluster(c *common.Context, narrow bool) string {
	th := c.Theme
	cl := c.Cluster
	var parts []string
	if !narrow {
		parts = append(parts, th.Render(th.Title, "netsleuth"))
	}
	parts = append(parts, th.Render(th.Label, orDash(cl.Context)), orDash(cl.Version))
	switch {
	case !m.known:
		parts = append(parts, th.Render(th.Faint, "discovering the cluster…"))
	case m.facts.Err != nil:
		parts = append(parts, th.Render(th.Faint, "nodes, CNI and kube-proxy unknown: "+m.facts.Err.Error()))
	default:
		proxy := "kube-proxy " + m.facts.ProxyMode
		switch {
		case m.facts.ProxyMode != "":
		case narrow:
			proxy = "kube-proxy ?"
		default:
			proxy = "kube-proxy mode not visible"
		}
		parts = append(parts, plural(m.facts.Nodes, "node"), "CNI "+m.facts.CNI, proxy)
	}
	if cl.Server != "" {
		parts = append(parts, th.Render(th.Faint, cl.Server))
	}
	return strings.Join(parts, th.Render(th.Faint, " │ "))
}

func session(c *common.Context, s *state.Store, r Run, narrow bool) string {
	th := c.Theme
	_, running, done := s.Counts()
	sum := s.Report.Summary
	state := r.State
	if running > 0 && r.Spinner != "" {
		state = r.Spinner + " " + state
	}
	probes := fmt.Sprintf("%d/%d probes done", done, len(s.Probes))
	if narrow {
		probes = fmt.Sprintf("%d/%d done", done, len(s.Probes))
	}
	return strings.Join([]string{
		th.Render(th.Label, state) + " " + clock(r.Elapsed),
		rootLine(c, sum),
		counts(c, sum, narrow),
		probes,
	}, th.Render(th.Faint, " │ "))
}

// counts is "47 pass 0 warn 2 fail 0 error 4 skip"; narrow leaves out the
// zeros.
func counts(c *common.Context, s model.Summary, narrow bool) string {
	var parts []string
	for _, n := range []struct {
		st model.Status
		n  int
	}{{model.StatusPass, s.Pass}, {model.StatusWarn, s.Warn}, {model.StatusFail, s.Fail}, {model.StatusError, s.Error}, {model.StatusSkip, s.Skip}} {
		if n.n > 0 || !narrow {
			parts = append(parts, c.Theme.Status(n.st, fmt.Sprintf("%d %s", n.n, n.st)))
		}
	}
	if len(parts) == 0 {
		return "no findings yet"
	}
	return strings.Join(parts, " ")
}

func rootLine(c *common.Context, s model.Summary) string {
	text := plural(s.RootCauses, "root cause") + ", " + plural(s.Symptoms, "symptom")
	if s.RootCauses > 0 {
		return c.Theme.Status(model.StatusFail, text)
	}
	return text
}

// clock is m:ss, or h:mm:ss past an hour.
func clock(d time.Duration) string {
	d = d.Truncate(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
