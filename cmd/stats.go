package cmd

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"

	"github.com/netsleuth/netsleuth/probes"
)

// apiStats counts the API requests of a run (exec streams included) and the
// bytes their responses carried when NETSLEUTH_API_STATS is set; the
// benchmarks report it. NETSLEUTH_API_STATS=verbose also prints the count per
// verb and resource.
type apiStats struct {
	n, bytes atomic.Int64
	mu       sync.Mutex
	by       map[string]int
}

func (s *apiStats) wrap(cfg *rest.Config) {
	if os.Getenv("NETSLEUTH_API_STATS") == "" {
		return
	}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return probes.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			s.n.Add(1)
			s.mu.Lock()
			if s.by == nil {
				s.by = map[string]int{}
			}
			s.by[r.Method+" "+apiResource(r.URL.Path)]++
			s.mu.Unlock()
			resp, err := rt.RoundTrip(r)
			if resp != nil && resp.Body != nil {
				resp.Body = &countingBody{ReadCloser: resp.Body, n: &s.bytes}
			}
			return resp, err
		})
	})
}

func (s *apiStats) print(w io.Writer) {
	v := os.Getenv("NETSLEUTH_API_STATS")
	if v == "" {
		return
	}
	fmt.Fprintf(w, "netsleuth: %d API requests, %d bytes read\n", s.n.Load(), s.bytes.Load())
	if v != "verbose" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.by))
	for k := range s.by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if s.by[keys[i]] != s.by[keys[j]] {
			return s.by[keys[i]] > s.by[keys[j]]
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		fmt.Fprintf(w, "  %5d %s\n", s.by[k], k)
	}
}

// apiResource names the resource a request path is about, without names
// and namespaces: /api/v1/namespaces/x/pods/y/exec is "pods/exec",
// /api/v1/nodes/n/proxy/configz is "nodes/proxy".
func apiResource(path string) string {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(seg) >= 2 && seg[0] == "api":
		seg = seg[2:]
	case len(seg) >= 3 && seg[0] == "apis":
		seg = seg[3:]
	default:
		return path
	}
	if len(seg) >= 2 && seg[0] == "namespaces" && len(seg) != 2 {
		seg = seg[2:]
	}
	switch len(seg) {
	case 0:
		return "discovery"
	case 1, 2:
		return seg[0]
	default:
		return seg[0] + "/" + seg[2]
	}
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// writeHeapProfile writes the heap profile (live objects at the last
// collection, and every allocation) to NETSLEUTH_MEMPROFILE when it is set,
// while the run's reads are still held: for the scale benchmark
// (`go tool pprof -sample_index=inuse_space FILE`).
func writeHeapProfile(w io.Writer) {
	path := os.Getenv("NETSLEUTH_MEMPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = errors.Join(pprof.WriteHeapProfile(f), f.Close())
	}
	if err != nil {
		fmt.Fprintf(w, "netsleuth: NETSLEUTH_MEMPROFILE: %v\n", err)
	}
}
