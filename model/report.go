package model

import (
	"fmt"
	"reflect"
	"time"
)

// The report's type identifiers: a stable contract for consumers of the JSON.
const (
	ReportAPIVersion = "netsleuth.dev/v1alpha2"
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
	// RootCauses counts the failing findings that are no other finding's
	// symptom; Symptoms counts the findings caused by one of them.
	RootCauses int `json:"rootCauses"`
	Symptoms   int `json:"symptoms"`
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
	// Trace is set by `netsleuth trace`: the connection and its hops.
	Trace *Trace `json:"trace,omitempty"`

	tally tally // root-cause bookkeeping for Add
}

// tally counts root causes and symptoms as findings arrive: a root cause is
// a finding that is no symptom and either fails or has a symptom.
type tally struct {
	status map[string]Status // key → status of findings without a cause
	cited  map[string]bool   // keys with at least one symptom
}

func (t *tally) add(s *Summary, f Finding) {
	if t.status == nil {
		t.status, t.cited = map[string]Status{}, map[string]bool{}
	}
	if f.CausedBy == "" {
		t.status[f.Key] = f.Status
		if f.Status.Failing() {
			s.RootCauses++
		}
		return
	}
	s.Symptoms++
	if st, ok := t.status[f.CausedBy]; ok && !t.cited[f.CausedBy] && !st.Failing() {
		s.RootCauses++
	}
	t.cited[f.CausedBy] = true
}

// Trace is one traced connection: its hops are findings of the report (by
// key, in the order the connection meets them), and Broken is the key of the
// first broken hop ("" when every hop passed).
type Trace struct {
	From   string   `json:"from"`
	To     string   `json:"to"`
	Hops   []string `json:"hops"`
	Broken string   `json:"broken,omitempty"`
}

// NewReport returns an empty report with its type fields set.
func NewReport(c Cluster, started time.Time) *Report {
	return &Report{APIVersion: ReportAPIVersion, Kind: ReportKind, Cluster: c, StartedAt: started, Findings: []Finding{}}
}

// Add appends a finding and counts it.
func (r *Report) Add(f Finding) {
	r.Findings = append(r.Findings, f)
	r.Summary.Add(f.Status)
	r.tally.add(&r.Summary, f)
}

// Symptoms returns the findings caused by the finding with key, in report order.
func (r *Report) Symptoms(key string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if key != "" && f.CausedBy == key {
			out = append(out, f)
		}
	}
	return out
}

// Find returns the finding with key.
func (r *Report) Find(key string) (Finding, bool) {
	for _, f := range r.Findings {
		if f.Key == key {
			return f, true
		}
	}
	return Finding{}, false
}

// Failing reports whether any finding has status fail or error.
func (r *Report) Failing() bool { return r.Summary.Fail+r.Summary.Error > 0 }

// Validate checks the contract every report keeps: known statuses, a root
// cause and at least one fix on every finding that is not a pass or a skip,
// unique keys, and every causedBy naming a root cause in the report.
func (r *Report) Validate() error {
	if r.APIVersion != ReportAPIVersion || r.Kind != ReportKind {
		return fmt.Errorf("report type is %s/%s, want %s/%s", r.APIVersion, r.Kind, ReportAPIVersion, ReportKind)
	}
	if Redact(r.Cluster.Server) != r.Cluster.Server {
		return fmt.Errorf("the cluster's server %q carries a secret", Redact(r.Cluster.Server))
	}
	var sum Summary
	var t tally
	keys := map[string]Finding{}
	for i, f := range r.Findings {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("finding %d: %w", i, err)
		}
		if f.Key == "" {
			return fmt.Errorf("finding %d (%s) has no key", i, f.ID)
		}
		if _, dup := keys[f.Key]; dup {
			return fmt.Errorf("finding %d (%s): key %q is not unique", i, f.ID, f.Key)
		}
		keys[f.Key] = f
		sum.Add(f.Status)
		t.add(&sum, f)
	}
	for _, f := range r.Findings {
		if f.CausedBy == "" {
			continue
		}
		cause, ok := keys[f.CausedBy]
		switch {
		case !ok:
			return fmt.Errorf("finding %s is caused by %q, which is not in the report", f.Key, f.CausedBy)
		case cause.CausedBy != "":
			return fmt.Errorf("finding %s is caused by %s, which is itself a symptom", f.Key, f.CausedBy)
		case !f.Status.Failing() && f.Status != StatusWarn:
			return fmt.Errorf("finding %s has status %s and a cause: only failures and warnings are symptoms", f.Key, f.Status)
		}
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
	case !reflect.DeepEqual(f.Redacted(), f):
		return fmt.Errorf("finding %s carries a secret in its text; findings are redacted when recorded (Finding.Redacted)", f.ID)
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
