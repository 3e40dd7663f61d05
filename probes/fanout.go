package probes

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// DefaultFanOut bounds how many calls FanOut makes at once when limit < 1.
const DefaultFanOut = 16

// FanOut calls fn for every index in [0, n), at most limit at a time, and
// returns the results and errors by index: fn writes nothing shared, so no
// caller needs a lock. Every call runs even when another fails; a call not
// yet started when ctx ends gets ctx's cause as its error.
func FanOut[T any](ctx context.Context, n, limit int, fn func(ctx context.Context, i int) (T, error)) ([]T, []error) {
	if limit < 1 {
		limit = DefaultFanOut
	}
	out := make([]T, n)
	errs := make([]error, n)
	var g errgroup.Group
	g.SetLimit(limit)
	for i := range n {
		g.Go(func() error {
			if err := context.Cause(ctx); err != nil {
				errs[i] = err
				return nil
			}
			out[i], errs[i] = fn(ctx, i)
			return nil
		})
	}
	_ = g.Wait()
	return out, errs
}

// FirstError returns the first non-nil error of errs.
func FirstError(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
