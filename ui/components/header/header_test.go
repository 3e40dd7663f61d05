package header

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/ui/common"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// TestView: before and after discovery, narrow and wide, and a discovery
// that failed; each line fits the width.
func TestView(t *testing.T) {
	first, _ := uitest.Demo(t)
	s := uitest.Store(t, first, "snat", "healthy")
	var out []string
	for _, w := range []int{80, 160} {
		c := common.New(theme.New(false, true), uitest.Lab)
		c.Width = w
		var m Model
		run := Run{State: "done", Elapsed: 8 * time.Second}
		views := []string{m.View(c, s, run)}
		m.SetFacts(Facts{Nodes: 2, CNI: "plain bridge", ProxyMode: "iptables"})
		views = append(views, m.View(c, s, run))
		m.SetFacts(Facts{Nodes: 2, CNI: "plain bridge"}) // kube-proxy a process: no pods, no ConfigMap
		views = append(views, m.View(c, s, run))
		m.SetFacts(Facts{Err: errors.New("listing nodes: forbidden")})
		views = append(views, m.View(c, s, Run{State: "running", Spinner: "⠋", Elapsed: 3 * time.Second}))
		for _, l := range strings.Split(strings.Join(views, "\n"), "\n") {
			if ansi.StringWidth(l) > w {
				t.Errorf("line wider than %d: %q", w, l)
			}
		}
		out = append(out, views...)
	}
	golden.RequireEqual(t, strings.Join(out, "\n---\n"))
}
