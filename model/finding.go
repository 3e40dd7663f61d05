// Package model holds netsleuth's pure domain types: findings, reports and the
// event stream probes emit. It imports nothing from the rest of the project.
package model

// Status is the verdict of one finding.
type Status string

// The statuses a finding can have, from best to worst.
const (
	StatusPass  Status = "pass"
	StatusSkip  Status = "skip"
	StatusWarn  Status = "warn"
	StatusFail  Status = "fail"
	StatusError Status = "error"
)

// Failing reports whether the status makes a headless run exit 1.
func (s Status) Failing() bool { return s == StatusFail || s == StatusError }

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusPass, StatusSkip, StatusWarn, StatusFail, StatusError:
		return true
	}
	return false
}

// Subject is the object a finding is about.
type Subject struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

// String renders the subject as kind/namespace/name, leaving out empty parts.
func (s Subject) String() string {
	out := s.Kind
	if s.Namespace != "" {
		out += "/" + s.Namespace
	}
	if s.Name != "" {
		out += "/" + s.Name
	}
	return out
}

// Fix is one way to repair a finding: commands to run, a manifest to apply, or both.
type Fix struct {
	Description string   `json:"description"`
	Commands    []string `json:"commands,omitempty"`
	Manifest    string   `json:"manifest,omitempty"`
}

// Finding is one verdict of a probe about one subject.
type Finding struct {
	Probe      string   `json:"probe"`
	ID         string   `json:"id"`
	Status     Status   `json:"status"`
	Title      string   `json:"title"`
	Subject    *Subject `json:"subject,omitempty"`
	RootCause  string   `json:"rootCause,omitempty"`
	Evidence   []string `json:"evidence,omitempty"`
	Fixes      []Fix    `json:"fixes,omitempty"`
	References []string `json:"references,omitempty"`
}
