package dnsquery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// normalize fills defaults and bounds a Spec.
func (s Spec) normalize() (Spec, error) {
	if s.Count <= 0 {
		s.Count = DefaultCount
	}
	s.Count = min(s.Count, MaxCount)
	if s.TimeoutMs <= 0 {
		s.TimeoutMs = int(DefaultTimeout / time.Millisecond)
	}
	s.Parallel = max(1, min(s.Parallel, MaxParallel))
	if len(s.Protocols) == 0 {
		s.Protocols = []string{"udp", "tcp"}
	}
	if s.Type == "" {
		s.Type = "A"
	}
	if _, ok := mdns.StringToType[strings.ToUpper(s.Type)]; !ok {
		return s, fmt.Errorf("unknown query type %q", s.Type)
	}
	for _, p := range s.Protocols {
		if p != "udp" && p != "tcp" {
			return s, fmt.Errorf("protocol %q is not udp or tcp", p)
		}
	}
	if n := len(s.Servers) * len(s.Names) * len(s.Protocols); n > MaxSeries {
		return s, fmt.Errorf("%d series requested, more than %d", n, MaxSeries)
	}
	return s, nil
}

// Run measures every series of spec concurrently (queries within a series
// run Parallel at a time) and then the search-path walk, if asked for.
func Run(ctx context.Context, spec Spec) Result {
	spec, err := spec.normalize()
	if err != nil {
		return Result{Error: err.Error()}
	}
	var res Result
	for _, srv := range spec.Servers {
		for _, name := range spec.Names {
			for _, proto := range spec.Protocols {
				res.Series = append(res.Series, Series{Server: srv, Name: mdns.Fqdn(name), Proto: proto})
			}
		}
	}
	var wg sync.WaitGroup
	for i := range res.Series {
		wg.Go(func() { runSeries(ctx, spec, &res.Series[i]) })
	}
	wg.Wait()
	if spec.Search != nil {
		sr := RunSearch(ctx, *spec.Search, time.Duration(spec.TimeoutMs)*time.Millisecond)
		res.Search = &sr
	}
	return res
}

// outcome of one query.
type outcome struct {
	msg *mdns.Msg
	rtt time.Duration
	err error
}

func runSeries(ctx context.Context, spec Spec, s *Series) {
	addr := hostPort(s.Server.Addr)
	qtype := mdns.StringToType[strings.ToUpper(spec.Type)]
	timeout := time.Duration(spec.TimeoutMs) * time.Millisecond
	outs := make([]outcome, spec.Count)
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range spec.Parallel {
		wg.Go(func() {
			c := &mdns.Client{Net: s.Proto, Timeout: timeout}
			for i := range jobs {
				outs[i] = exchange(ctx, c, addr, s.Name, qtype, spec.EDNS)
			}
		})
	}
	for i := range outs {
		if ctx.Err() != nil {
			outs = outs[:i]
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	summarize(s, outs, time.Since(start))
}

// exchange sends one query with a fresh socket, as a resolver (or dig) does.
func exchange(ctx context.Context, c *mdns.Client, addr, name string, qtype uint16, edns bool) outcome {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	qctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	start := time.Now()
	r, _, err := c.ExchangeContext(qctx, m, addr)
	return outcome{msg: r, rtt: time.Since(start), err: err}
}

func summarize(s *Series, outs []outcome, wall time.Duration) {
	s.Sent = len(outs)
	s.Rcodes = map[string]int{}
	var rtts []float64
	for _, o := range outs {
		if o.err != nil {
			if isTimeout(o.err) {
				s.Timeouts++
			} else {
				s.Errors++
			}
			s.LastError = o.err.Error()
			continue
		}
		s.Answered++
		rtts = append(rtts, float64(o.rtt.Microseconds())/1000)
		s.Rcodes[mdns.RcodeToString[o.msg.Rcode]]++
		if o.msg.Truncated {
			s.Truncated++
		}
		if o.msg.Rcode == mdns.RcodeSuccess && len(o.msg.Answer) == 0 {
			s.Empty++
		}
		if s.Answers == nil {
			s.Answers = answers(o.msg)
		}
	}
	sort.Float64s(rtts)
	s.P50Ms, s.P95Ms = Percentile(rtts, 50), Percentile(rtts, 95)
	if len(rtts) > 0 {
		s.MaxMs = rtts[len(rtts)-1]
	}
	if wall > 0 {
		s.QPS = float64(s.Answered) / wall.Seconds()
	}
}

// answers renders up to 8 answer records as "name TYPE data".
func answers(m *mdns.Msg) []string {
	out := []string{}
	for i, rr := range m.Answer {
		if i == 8 {
			out = append(out, fmt.Sprintf("... %d more", len(m.Answer)-8))
			break
		}
		h := rr.Header()
		data := strings.TrimPrefix(rr.String(), h.String())
		out = append(out, fmt.Sprintf("%s %s %s", h.Name, mdns.TypeToString[h.Rrtype], strings.TrimSpace(data)))
	}
	return out
}

// Percentile returns the nearest-rank p-th percentile of sorted values, 0
// for none.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// hostPort adds port 53 to a bare address.
func hostPort(a string) string {
	if _, _, err := net.SplitHostPort(a); err == nil {
		return a
	}
	return net.JoinHostPort(strings.Trim(a, "[]"), "53")
}
