package probes

import (
	"context"
	"errors"
)

// Preflighter is a probe that checks its inputs against the cluster (the
// pod --from names, the Service --to names) before any probe runs and
// anything is created.
type Preflighter interface {
	// Preflight returns an *InputError when an input names nothing the
	// cluster has; other errors are left for Run to meet and report.
	Preflight(ctx context.Context, env *Env) error
}

// InputError is a flag's value that names nothing in the cluster: a usage
// error, found before anything is created.
type InputError struct {
	Flag string // without dashes
	Err  error
}

func (e *InputError) Error() string { return "--" + e.Flag + ": " + e.Err.Error() }

func (e *InputError) Unwrap() error { return e.Err }

// Preflight runs the preflights of ps and returns the first *InputError.
func Preflight(ctx context.Context, ps []Probe, env *Env) error {
	for _, p := range ps {
		pf, ok := p.(Preflighter)
		if !ok {
			continue
		}
		var ie *InputError
		if err := pf.Preflight(ctx, env); errors.As(err, &ie) {
			return ie
		}
	}
	return nil
}
