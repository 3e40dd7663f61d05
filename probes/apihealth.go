package probes

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/netsleuth/netsleuth/model"
)

// APICatchUp is how long after the API server answers again its clients may
// still act on what they missed: client-go's reflectors (kube-proxy's, the
// EndpointSlice controller's) retry a broken watch with a back-off of up to
// 30 s, so a Service made during or just after an outage may be programmed
// that much later.
const APICatchUp = 30 * time.Second

// APIHealth records, from every request of a run, when the API server
// stopped answering and when it answered again. A probe may ride out an
// API server restart without an error of its own, yet test while the
// cluster's controllers are still catching up; the runner then names the
// outage as the cause of what that probe found failing.
type APIHealth struct {
	mu      sync.Mutex
	down    time.Time // first failure since it last answered; zero while it answers
	outages []Outage
	now     func() time.Time
}

// Outage is a time the API server did not answer the run's requests; To is
// zero while it still does not.
type Outage struct {
	From, To time.Time
}

// NewAPIHealth returns a recorder that has seen nothing yet.
func NewAPIHealth() *APIHealth { return &APIHealth{now: time.Now} }

// Wrap is a transport wrapper (rest.Config.Wrap) that observes every
// request's outcome.
func (h *APIHealth) Wrap(rt http.RoundTripper) http.RoundTripper {
	return RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(r)
		h.Observe(err) // any HTTP answer is an answer: a 503 may be one aggregated API, not the server
		return resp, err
	})
}

// Observe records one request's outcome: an error that says the API server
// did not answer (APIUnreachable) starts an outage, an answer ends it, and
// any other error (a cancelled request) says nothing.
func (h *APIHealth) Observe(err error) {
	if h == nil {
		return
	}
	down := APIUnreachable(err)
	if err != nil && !down {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	switch {
	case down && h.down.IsZero():
		h.down = now
	case !down && !h.down.IsZero():
		h.outages = append(h.outages, Outage{From: h.down, To: now})
		h.down = time.Time{}
	}
}

// During returns the first outage that may have touched what a probe saw
// between from and to: one that began before to and ended (plus
// APICatchUp) after from, or that has not ended.
func (h *APIHealth) During(from, to time.Time) (Outage, bool) {
	if h == nil {
		return Outage{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	all := h.outages
	if !h.down.IsZero() {
		all = append(all[:len(all):len(all)], Outage{From: h.down})
	}
	for _, o := range all {
		if o.From.Before(to) && (o.To.IsZero() || o.To.Add(APICatchUp).After(from)) {
			return o, true
		}
	}
	return Outage{}, false
}

// outageFinding is the runner's finding when the API server stopped
// answering while probe p ran (or just before) and p found something
// failing without an error of its own: what failed may be the cluster's
// controllers catching up, not a fault. Every probe the outage touched
// records it with one key, so the report shows it once.
func outageFinding(info model.ProbeInfo, o Outage) model.Finding {
	from := o.From.UTC().Format(time.TimeOnly)
	back := "and had not answered again when the probe ended"
	if !o.To.IsZero() {
		back = fmt.Sprintf("and answered again %s later", o.To.Sub(o.From).Round(100*time.Millisecond))
	}
	return model.Finding{
		Probe:  info.ID,
		ID:     FindingAPIUnreachable,
		Status: model.StatusError,
		Title:  fmt.Sprintf("The API server stopped answering mid-run (at %s), so what the probes found failing then may be the cluster catching up", from),
		RootCause: fmt.Sprintf("The Kubernetes API server stopped answering the run's requests at %s %s (it was restarted, overloaded, or the network to it broke). "+
			"Its other clients lost their watches too: kube-proxy, the EndpointSlice controller and the CNI's agents program what changed meanwhile only after they reconnect, "+
			"which client-go's back-off can delay by up to %s. What failed in this window may be that delay, not a fault.", from, back, APICatchUp),
		Evidence: []string{
			fmt.Sprintf("the run's own API requests: no answer from %s %s", from, back),
			fmt.Sprintf("%s ran within %s of it; its failing findings are linked to this one", info.ID, APICatchUp),
		},
		Fixes: []model.Fix{{
			Description: "Check that the API server is healthy and stays up (and why it went away: its logs, its restarts), then run the probes again:",
			Commands:    []string{"kubectl get --raw /readyz", "netsleuth check --probe " + info.ID},
		}},
	}.WithKey(outageKey + o.From.UTC().Format(time.RFC3339Nano))
}

// outageKey starts the qualifier of an outage finding's key.
const outageKey = "outage at "

// isOutage reports whether f is the runner's finding for an outage.
func isOutage(f model.Finding) bool {
	return f.ID == FindingAPIUnreachable && strings.Contains(f.Key, "|"+outageKey)
}

// linkOutage makes every failing finding of one probe's run that has no
// cause of its own a symptom of the API server's outage, when the runner
// recorded one for that run (outageFinding): the report then leads with the
// outage, not with faults the outage may have produced.
func linkOutage(fs []model.Finding) []model.Finding {
	var cause *model.Finding
	for i := range fs {
		if isOutage(fs[i]) {
			cause = &fs[i]
			break
		}
	}
	if cause == nil {
		return fs
	}
	out := make([]model.Finding, len(fs))
	for i, f := range fs {
		out[i] = f
		if f.Key != cause.Key && f.CausedBy == "" && f.Status.Failing() {
			out[i] = f.Symptom(*cause)
		}
	}
	return out
}

// RoundTripFunc is a function used as an http.RoundTripper (transport
// wrappers on the client's rest.Config).
type RoundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f RoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
