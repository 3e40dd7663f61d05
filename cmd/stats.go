package cmd

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// apiStats counts the API requests of a run (exec streams included) when
// NETSLEUTH_API_STATS is set; the benchmarks report it.
type apiStats struct{ n atomic.Int64 }

func (s *apiStats) wrap(cfg *rest.Config) {
	if os.Getenv("NETSLEUTH_API_STATS") == "" {
		return
	}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			s.n.Add(1)
			return rt.RoundTrip(r)
		})
	})
}

func (s *apiStats) print(w io.Writer) {
	if os.Getenv("NETSLEUTH_API_STATS") != "" {
		fmt.Fprintf(w, "netsleuth: %d API requests\n", s.n.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
