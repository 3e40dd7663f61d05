package probes

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/netsleuth/netsleuth/model"
)

// Multi is a sink that forwards every event to each of its sinks in order.
type Multi []model.Sink

// Emit forwards e to every sink.
func (m Multi) Emit(e model.Event) {
	for _, s := range m {
		s.Emit(e)
	}
}

// Tee returns a sink that forwards every event to each of sinks.
func Tee(sinks ...model.Sink) model.Sink { return Multi(sinks) }

// Collector is a sink that builds a model.Report from finding events. It is
// safe for concurrent use. Findings are ordered by the probe order given to
// NewCollector, then in the order each probe recorded them, so reports are
// stable however the probes interleave.
//
// A finding whose producer set its Key (a shared diagnosis) is kept once per
// report however many probes record it: later copies add their evidence to
// the first and the worst status wins. Every other finding gets a key made
// from its ID and subject, made unique with a counter.
type Collector struct {
	mu       sync.Mutex
	cluster  model.Cluster
	started  time.Time
	order    []string
	findings map[string][]model.Finding
	runID    string
}

// NewCollector returns a collector for a run that started at started against
// cluster; order lists probe IDs in the order their findings should appear.
func NewCollector(cluster model.Cluster, started time.Time, order ...string) *Collector {
	return &Collector{cluster: cluster, started: started, order: slices.Clone(order), findings: map[string][]model.Finding{}}
}

// Emit records finding events and ignores the others.
func (c *Collector) Emit(e model.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runID == "" {
		c.runID = e.RunID
	}
	if !slices.Contains(c.order, e.Probe) {
		c.order = append(c.order, e.Probe)
	}
	if e.Type == model.EventFinding && e.Finding != nil {
		c.findings[e.Probe] = append(c.findings[e.Probe], *e.Finding)
	}
}

// Report returns the report so far, with its duration measured up to end.
func (c *Collector) Report(end time.Time) *model.Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []model.Finding
	for _, id := range c.order {
		all = append(all, c.findings[id]...)
	}
	r := model.NewReport(c.cluster, c.started)
	r.DurationMs = end.Sub(c.started).Milliseconds()
	for _, f := range Merge(all) {
		r.Add(f)
	}
	return r
}

// Merge gives every finding a unique key and keeps one finding per shared
// fact, in the order given. A symptom whose cause was never recorded keeps
// its root cause and fixes but loses the dangling link.
func Merge(in []model.Finding) []model.Finding {
	out := make([]model.Finding, 0, len(in))
	at := map[string]int{}
	for _, f := range in {
		if f.Key != "" {
			if i, ok := at[f.Key]; ok {
				out[i] = mergeFact(out[i], f)
				continue
			}
		} else {
			f.Key = uniqueKey(at, model.KeyOf(f.ID, f.Subject, ""))
		}
		at[f.Key] = len(out)
		out = append(out, f)
	}
	for i := range out {
		if c := out[i].CausedBy; c != "" {
			if j, ok := at[c]; !ok || out[j].CausedBy != "" || j == i {
				out[i].CausedBy = ""
			}
		}
	}
	return out
}

func uniqueKey(at map[string]int, k string) string {
	if _, taken := at[k]; !taken {
		return k
	}
	for n := 2; ; n++ {
		if _, taken := at[fmt.Sprintf("%s|%d", k, n)]; !taken {
			return fmt.Sprintf("%s|%d", k, n)
		}
	}
}

// mergeFact folds a second report of one fact into the first.
func mergeFact(a, b model.Finding) model.Finding {
	if rank(b.Status) > rank(a.Status) {
		b.Evidence = appendNew(b.Evidence, a.Evidence...)
		return b
	}
	a.Evidence = appendNew(a.Evidence, b.Evidence...)
	return a
}

func rank(s model.Status) int {
	return slices.Index([]model.Status{model.StatusPass, model.StatusSkip, model.StatusWarn, model.StatusFail, model.StatusError}, s)
}

func appendNew(dst []string, src ...string) []string {
	for _, s := range src {
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}
