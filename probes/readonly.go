package probes

import (
	"context"
	"fmt"
	"strings"

	"github.com/netsleuth/netsleuth/model"
)

// FindingReadOnly is the skip finding of a probe --read-only did not run.
const FindingReadOnly = "runner.read-only"

// Creator is a probe whose need to create objects depends on the run's
// options (policy creates a stand-in only to verify a --from/--to answer).
// Other probes create objects when their declared RBAC has a verb other
// than get, list or watch.
type Creator interface {
	Creates(o Options) bool
}

// Writes is what p would create, change or delete in a run with options o:
// the declared permissions with a verb that is not a read, or nil.
func Writes(p Probe, o Options) []model.Permission {
	if c, ok := p.(Creator); ok && !c.Creates(o) {
		return nil
	}
	var out []model.Permission
	for _, perm := range p.Info().RBAC {
		if !perm.ReadOnly() {
			out = append(out, perm)
		}
	}
	return out
}

// ReadOnly keeps the probes of ps that create nothing with options o and
// replaces each other one by a probe that records why it did not run.
func ReadOnly(ps []Probe, o Options) []Probe {
	out := make([]Probe, len(ps))
	for i, p := range ps {
		out[i] = p
		if w := Writes(p, o); len(w) > 0 {
			out[i] = skipped{info: p.Info(), writes: w}
		}
	}
	return out
}

// skipped stands in for a probe --read-only left out.
type skipped struct {
	info   model.ProbeInfo
	writes []model.Permission
}

func (s skipped) Info() model.ProbeInfo { return s.info }

func (s skipped) Run(_ context.Context, _ *Env, rec Recorder) error {
	var what []string
	for _, p := range s.writes {
		for _, v := range p.Verbs {
			if !(model.Permission{Verbs: []string{v}}).ReadOnly() {
				what = append(what, v+" "+p.Name())
			}
		}
	}
	rec.Finding(model.Finding{
		ID:     FindingReadOnly,
		Status: model.StatusSkip,
		Title:  fmt.Sprintf("%s not run: --read-only, and it creates objects in the cluster", title(s.info)),
		RootCause: fmt.Sprintf("--read-only runs only probes that create nothing; %s needs %s.",
			s.info.ID, strings.Join(what, ", ")),
		Fixes: []model.Fix{{
			Description: "Run it without --read-only as a user bound to the netsleuth-active ClusterRole.",
			Commands:    []string{"netsleuth rbac --active | kubectl apply -f -", "netsleuth check --probe " + s.info.ID},
		}},
	})
	return nil
}

// IsSkipped reports whether p is the stand-in ReadOnly put for a probe that
// creates objects.
func IsSkipped(p Probe) bool {
	_, ok := p.(skipped)
	return ok
}
