package rootcauses

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
	"github.com/netsleuth/netsleuth/ui/state"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// TestViewTwoCauses: the snat fault and CoreDNS at zero, each cause with
// its symptoms under it.
func TestViewTwoCauses(t *testing.T) {
	first, _ := uitest.Demo(t)
	s := uitest.Store(t, first, "snat", "coredns-zero")
	var m Model
	m.Rebuild(s, theme.New(false, true), "")
	m.List.SetHeight(10)
	if k, ok := m.Selected(); !ok || k != s.RootCauses[0].Key {
		t.Errorf("selected %q, want the first root cause", k)
	}
	golden.RequireEqual(t, m.List.View(theme.New(false, true), 80))
}

func TestViewNoneAndFilter(t *testing.T) {
	first, _ := uitest.Demo(t)
	th := theme.New(false, true)
	var m Model
	m.Rebuild(uitest.Store(t, first, "healthy"), th, "")
	m.List.SetHeight(1)
	if got := m.List.View(th, 80); got != "  No root cause: nothing fails so far." {
		t.Errorf("healthy view = %q", got)
	}
	m.Rebuild(uitest.Store(t, first, "snat", "coredns-zero"), th, "MASQUERADE")
	if m.List.Len() != 2 {
		t.Errorf("filter kept %d rows, want the snat cause and its symptom", m.List.Len())
	}
}

// TestViewAggregatesManyCauses: 412 Services without ready endpoints are
// one numbered row, as in the text report, and the next cause is [2].
func TestViewAggregatesManyCauses(t *testing.T) {
	s := state.New(model.Cluster{}, time.Unix(0, 0), "r1", []model.ProbeInfo{{ID: "services"}})
	add := func(f model.Finding) {
		f.Probe = "services"
		s.Apply(model.Event{RunID: "r1", Probe: "services", Type: model.EventFinding, Finding: &f})
	}
	for i := range 412 {
		ns, name := fmt.Sprintf("ns-%03d", i), fmt.Sprintf("svc-%03d", i)
		add(model.Finding{ID: "services.no-ready-endpoints", Status: model.StatusFail, Subject: &model.Subject{Kind: "Service", Namespace: ns, Name: name},
			Title: "Service " + ns + "/" + name + " has no ready endpoints", RootCause: "none ready",
			Fixes: []model.Fix{{Description: "look", Commands: []string{"kubectl -n " + ns + " describe svc " + name}}}})
	}
	add(model.Finding{ID: "services.selector-no-match", Status: model.StatusFail, Subject: &model.Subject{Kind: "Service", Namespace: "web", Name: "front"},
		Title: "Service web/front selector matches no pod", RootCause: "no match", Fixes: []model.Fix{{Description: "fix"}}})
	th := theme.New(false, true)
	var m Model
	m.Rebuild(s, th, "")
	m.List.SetHeight(5)
	if m.List.Len() != 2 || len(s.Causes) != 2 {
		t.Fatalf("%d rows for %d causes, want 2 rows", m.List.Len(), len(s.Causes))
	}
	view := m.List.View(th, 200)
	for _, want := range []string{"[1]", "412 Services have no ready endpoints; first 10: ns-000/svc-000", "[2]", "Service web/front selector matches no pod"} {
		if !strings.Contains(view, want) {
			t.Errorf("view lacks %q:\n%s", want, view)
		}
	}
	if k, ok := m.Selected(); !ok || k != s.Causes[0].First().Key {
		t.Errorf("selected %q, want the first Service's finding", k)
	}
}
