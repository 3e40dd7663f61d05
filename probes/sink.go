package probes

import (
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
	r := model.NewReport(c.cluster, c.started)
	r.DurationMs = end.Sub(c.started).Milliseconds()
	for _, id := range c.order {
		for _, f := range c.findings[id] {
			r.Add(f)
		}
	}
	return r
}
