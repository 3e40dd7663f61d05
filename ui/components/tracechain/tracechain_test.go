package tracechain

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
	"github.com/netsleuth/netsleuth/ui/theme"
)

func report(t *testing.T) *model.Report {
	r := model.NewReport(uitest.Lab, uitest.T0)
	for _, f := range uitest.Findings(t, "trace") {
		r.Add(f)
	}
	return r
}

// TestRenderBrokenSourceNode: the chain stops at the source node, opened
// with the shared cause and its fix; later hops are not reached.
func TestRenderBrokenSourceNode(t *testing.T) {
	c, ok := Parse(report(t))
	if !ok || len(c.Hops) != 4 || c.Cause == nil || c.Cause.ID != "node.no-masquerade" || c.From != "shop/web-7d9c" {
		t.Fatalf("chain = %+v", c)
	}
	golden.RequireEqual(t, strings.Join(Render(c, theme.New(false, true), 80, c.Hops[1].Key), "\n"))
}

// TestParseReportTrace: a report's Trace (netsleuth trace) decides the hops
// and the broken one.
func TestParseReportTrace(t *testing.T) {
	r := report(t)
	r.Trace = &model.Trace{From: "a", To: "b", Hops: []string{r.Findings[0].Key}, Broken: ""}
	c, ok := Parse(r)
	if !ok || len(c.Hops) != 1 || c.From != "a" || c.Broken != "" {
		t.Errorf("chain = %+v", c)
	}
	if out := Render(c, theme.New(false, true), 80, ""); !strings.Contains(strings.Join(out, "\n"), "every hop passes") {
		t.Errorf("a passing trace says nothing: %q", out)
	}
}
