package model

import (
	"fmt"
	"time"
)

// The report's type identifiers: a stable contract for consumers of the JSON.
const (
	ReportAPIVersion = "netsleuth.dev/v1alpha1"
	ReportKind       = "Report"
)

// Cluster identifies the cluster a report was made against.
type Cluster struct {
	Context string `json:"context,omitempty"`
	Server  string `json:"server,omitempty"`
	Version string `json:"version,omitempty"`
}

// Summary counts findings by status.
type Summary struct {
	Pass  int `json:"pass"`
	Warn  int `json:"warn"`
	Fail  int `json:"fail"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

// Add counts one finding of status s.
func (s *Summary) Add(st Status) {
	switch st {
	case StatusPass:
		s.Pass++
	case StatusWarn:
		s.Warn++
	case StatusFail:
		s.Fail++
	case StatusError:
		s.Error++
	case StatusSkip:
		s.Skip++
	}
}

// Report is the whole result of a run, as the headless writers print it.
type Report struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Cluster    Cluster   `json:"cluster"`
	StartedAt  time.Time `json:"startedAt"`
	DurationMs int64     `json:"durationMs"`
	Summary    Summary   `json:"summary"`
	Findings   []Finding `json:"findings"`
}

// NewReport returns an empty report with its type fields set.
func NewReport(c Cluster, started time.Time) *Report {
	return &Report{APIVersion: ReportAPIVersion, Kind: ReportKind, Cluster: c, StartedAt: started, Findings: []Finding{}}
}

// Add appends a finding and counts it.
func (r *Report) Add(f Finding) {
	r.Findings = append(r.Findings, f)
	r.Summary.Add(f.Status)
}

// Failing reports whether any finding has status fail or error.
func (r *Report) Failing() bool { return r.Summary.Fail+r.Summary.Error > 0 }

// Validate checks the contract every report keeps: known statuses, and a root
// cause and at least one fix on every finding that is not a pass or a skip.
func (r *Report) Validate() error {
	if r.APIVersion != ReportAPIVersion || r.Kind != ReportKind {
		return fmt.Errorf("report type is %s/%s, want %s/%s", r.APIVersion, r.Kind, ReportAPIVersion, ReportKind)
	}
	var sum Summary
	for i, f := range r.Findings {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("finding %d: %w", i, err)
		}
		sum.Add(f.Status)
	}
	if sum != r.Summary {
		return fmt.Errorf("summary %+v does not match the findings %+v", r.Summary, sum)
	}
	return nil
}

// Validate checks one finding against the report contract.
func (f Finding) Validate() error {
	switch {
	case f.Probe == "" || f.ID == "" || f.Title == "":
		return fmt.Errorf("finding %q lacks probe, id or title", f.ID)
	case !f.Status.Valid():
		return fmt.Errorf("finding %s has unknown status %q", f.ID, f.Status)
	case f.Status == StatusPass || f.Status == StatusSkip:
		return nil
	case f.RootCause == "":
		return fmt.Errorf("finding %s (%s) has no root cause", f.ID, f.Status)
	case len(f.Fixes) == 0:
		return fmt.Errorf("finding %s (%s) has no fix", f.ID, f.Status)
	}
	return nil
}
