package policy

import (
	"net/netip"

	"github.com/netsleuth/netsleuth/model"
)

// Answer is the engine's answer to a question another probe asks from a
// user's pod (external, pod-to-service, trace): the verdict and its
// finding, which names the policies that isolate either end, the rule that
// admits the traffic or that none does, and the fixes.
type Answer struct {
	Verdict Verdict
	Finding model.Finding
}

// Allowed reports whether the policies let the traffic through.
func (a Answer) Allowed() bool { return a.Verdict.Allowed() }

// Deniers names the policies that isolate the side (or sides) that denies
// the traffic.
func (a Answer) Deniers() []string {
	var out []string
	if !a.Verdict.Egress.Allowed() {
		out = append(out, a.Verdict.Egress.Policies...)
	}
	if !a.Verdict.Ingress.Allowed() {
		out = append(out, a.Verdict.Ingress.Policies...)
	}
	return out
}

// Ask answers "may src send to dst on port?"; dst is the pod that owns the
// address when there is one, else an address outside the pods (ipBlock).
func (e *Engine) Ask(src Endpoint, dst netip.Addr, port Port) Answer {
	to := e.IPEndpoint(dst)
	v := e.Check(src, to, port)
	return Answer{Verdict: v, Finding: e.Finding(src, to, v)}
}

// Blocked is a probe's own failing finding for traffic the policies deny
// and that did not arrive: the engine's root cause (the policies by name),
// its explanation and its fixes, then the probe's live evidence.
func (a Answer) Blocked(id string, subj *model.Subject, title string, live []string) model.Finding {
	f := a.Finding
	return model.Finding{ID: id, Status: model.StatusFail, Subject: subj, Title: title, RootCause: f.RootCause,
		Evidence: append(append([]string{}, f.Evidence...), live...), Fixes: f.Fixes, References: f.References}
}

// Compare sets live traffic against the answer: the evidence line, and the
// finding that explains a contradiction (policy.not-enforced when the
// policies deny what arrived).
func (a Answer) Compare(live Live) (string, *model.Finding) {
	return Diagnose(Comparison{Verdict: a.Verdict, Subject: a.Finding.Subject, Static: a.Finding.Evidence, Live: live})
}
