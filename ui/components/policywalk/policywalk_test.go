package policywalk

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
	"github.com/netsleuth/netsleuth/ui/theme"
)

func TestRenderDenied(t *testing.T) {
	f := uitest.Findings(t, "policy")[0]
	w, ok := Parse(f)
	if !ok || len(w.Steps) != 3 || w.Steps[0].Status != model.StatusPass || w.Steps[1].Status != model.StatusFail || w.Steps[2].Name != "live" {
		t.Fatalf("walk = %+v", w)
	}
	golden.RequireEqual(t, strings.Join(Render(w, theme.New(false, true), 80), "\n"))
}

func TestParseOthers(t *testing.T) {
	if _, ok := Parse(model.Finding{ID: "policy.lint-clean"}); ok {
		t.Error("a lint finding parsed as a walk")
	}
	w, _ := Parse(model.Finding{ID: ID, Status: model.StatusWarn, Evidence: []string{
		"egress: ns/a is isolated by ns/deny-egress and no rule of it admits ns/b on tcp/80.",
		"ingress: no NetworkPolicy selects ns/b for ingress, so it is not isolated and all ingress traffic is allowed.",
		"live traffic contradicts this verdict: TCP connect 10.0.0.2:80 from stand-in: ok (see policy.not-enforced)"}})
	if len(w.Steps) != 3 || w.Steps[0].Status != model.StatusFail || w.Steps[2].Status != model.StatusFail {
		t.Errorf("walk = %+v", w)
	}
}
