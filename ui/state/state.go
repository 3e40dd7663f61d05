// Package state is what the TUI knows about the session: every probe's
// current run, its stage and findings, and the report they make together.
// It is plain data driven by runner events, so every pane is tested
// without a cluster.
package state

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/report"
)

// Phase is where a probe is in its current run.
type Phase int

// The phases.
const (
	Pending Phase = iota
	Running
	Done
)

// Probe is one probe's current run.
type Probe struct {
	Info    model.ProbeInfo
	RunID   string
	Phase   Phase
	Stage   string
	Started time.Time
	Ended   time.Time
	// Raw are the findings the probe recorded in its current run.
	Raw []model.Finding
	// Findings are the report's findings this probe recorded, shared facts
	// included (one finding however many probes cite it).
	Findings []model.Finding
	Summary  model.Summary
	// Version changes whenever anything above does.
	Version int
}

// Worst is the most severe status of the probe's findings, skip when none.
func (p *Probe) Worst() model.Status {
	switch s := p.Summary; {
	case s.Error > 0:
		return model.StatusError
	case s.Fail > 0:
		return model.StatusFail
	case s.Warn > 0:
		return model.StatusWarn
	case s.Pass > 0:
		return model.StatusPass
	}
	return model.StatusSkip
}

// Failing reports whether a finding of the probe fails or errs.
func (p *Probe) Failing() bool { return p.Summary.Fail+p.Summary.Error > 0 }

// Duration is how long the current run took, or has taken so far.
func (p *Probe) Duration(now time.Time) time.Duration {
	switch {
	case p.Started.IsZero():
		return 0
	case p.Ended.IsZero():
		return now.Sub(p.Started)
	}
	return p.Ended.Sub(p.Started)
}

// Seconds formats a probe's duration: "0.3s", "12.5s", "2m05s".
func Seconds(d time.Duration) string {
	if d >= time.Minute {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// LogLine is one entry of the event log.
type LogLine struct {
	Time  time.Time
	RunID string
	Probe string
	Text  string
}

// Store is the session as the TUI sees it.
type Store struct {
	Cluster    model.Cluster
	Started    time.Time
	Probes     []*Probe
	Report     *model.Report
	RootCauses []model.Finding
	// Causes are RootCauses grouped as the text report numbers them (more
	// than report.AggregateOver of one ID and status are one entry).
	Causes []report.Group
	Log    []LogLine
	// Version changes whenever anything above does.
	Version int

	index map[string]int
}

// New returns the store of a session whose first run, runID, runs infos.
func New(cluster model.Cluster, started time.Time, runID string, infos []model.ProbeInfo) *Store {
	s := &Store{Cluster: cluster, Started: started, index: map[string]int{}}
	for _, in := range infos {
		s.add(in, runID)
	}
	s.rebuild()
	return s
}

func (s *Store) add(in model.ProbeInfo, runID string) *Probe {
	if i, ok := s.index[in.ID]; ok {
		return s.Probes[i]
	}
	p := &Probe{Info: in, RunID: runID}
	s.index[in.ID] = len(s.Probes)
	s.Probes = append(s.Probes, p)
	return p
}

// Probe returns the probe with id, or nil.
func (s *Store) Probe(id string) *Probe {
	if i, ok := s.index[id]; ok {
		return s.Probes[i]
	}
	return nil
}

// Restart marks probes as pending in a new run, runID, dropping their
// findings; probes the store does not know yet are added.
func (s *Store) Restart(runID string, infos []model.ProbeInfo, now time.Time) {
	for _, in := range infos {
		p := s.add(in, runID)
		*p = Probe{Info: in, RunID: runID, Version: p.Version + 1}
		s.log(now, runID, in.ID, "queued for a new run")
	}
	s.rebuild()
}

// Apply folds one event into the store. It returns false for an event of a
// run that is not the probe's current one (a stale event) or of an unknown
// probe. The session's own progress (no probe: the agents it starts as the
// run begins) goes to the log.
func (s *Store) Apply(e model.Event) bool {
	if e.Probe == "" && e.Type == model.EventProgress {
		s.log(e.Time, e.RunID, "", e.Message)
		return true
	}
	p := s.Probe(e.Probe)
	if p == nil || e.RunID != p.RunID {
		return false
	}
	p.Version++
	switch e.Type {
	case model.EventStarted:
		p.Phase, p.Stage, p.Started = Running, "starting", e.Time
		s.log(e.Time, e.RunID, e.Probe, "started")
	case model.EventProgress:
		p.Stage = e.Message
		s.log(e.Time, e.RunID, e.Probe, e.Message)
	case model.EventFinding:
		if e.Finding == nil {
			return true
		}
		p.Raw = append(p.Raw, *e.Finding)
		s.log(e.Time, e.RunID, e.Probe, strings.ToUpper(string(e.Finding.Status))+" "+e.Finding.Title)
		s.rebuild()
	case model.EventFinished:
		p.Phase, p.Stage, p.Ended = Done, "", e.Time
		s.log(e.Time, e.RunID, e.Probe, "finished in "+Seconds(p.Duration(e.Time)))
		s.rebuild()
	}
	s.Version++
	return true
}

func (s *Store) log(t time.Time, runID, probe, text string) {
	s.Log = append(s.Log, LogLine{Time: t, RunID: runID, Probe: probe, Text: text})
	s.Version++
}

// rebuild merges the probes' findings into the report, as the session does,
// and gives each probe its findings in it.
func (s *Store) rebuild() {
	var all []model.Finding
	for _, p := range s.Probes {
		all = append(all, p.Raw...)
	}
	r := model.NewReport(s.Cluster, s.Started)
	for _, f := range probes.Merge(all) {
		r.Add(f)
	}
	s.Report = r
	s.RootCauses = report.RootCauses(r)
	s.Causes = report.RootCauseGroups(r)
	for _, p := range s.Probes {
		var cited []string
		for _, f := range p.Raw {
			if f.Key != "" {
				cited = append(cited, f.Key)
			}
		}
		p.Findings, p.Summary = nil, model.Summary{}
		for _, f := range r.Findings {
			if f.Probe == p.Info.ID || slices.Contains(cited, f.Key) {
				p.Findings = append(p.Findings, f)
				p.Summary.Add(f.Status)
			}
		}
	}
	s.Version++
}

// Counts says how many probes are in each phase.
func (s *Store) Counts() (pending, running, done int) {
	for _, p := range s.Probes {
		switch p.Phase {
		case Pending:
			pending++
		case Running:
			running++
		case Done:
			done++
		}
	}
	return pending, running, done
}

// Finding returns the report's finding with key.
func (s *Store) Finding(key string) (model.Finding, bool) { return s.Report.Find(key) }

// ProbeOf returns the probe that recorded the finding with key first.
func (s *Store) ProbeOf(key string) *Probe {
	f, ok := s.Report.Find(key)
	if !ok {
		return nil
	}
	return s.Probe(f.Probe)
}
