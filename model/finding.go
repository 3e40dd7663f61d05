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

// Fix is one way to repair a finding: commands to run, a manifest to apply, or
// both (the manifest is applied first, kubectl apply -f -, then the commands run).
// Commands are safe to paste: each is idempotent (running it twice changes
// nothing the second time) and a setting that must survive a reboot is kept in
// a file of netsleuth's own.
type Fix struct {
	Description string `json:"description"`
	// Node is the node the commands must run on, as root; "" means they run
	// wherever kubectl runs.
	Node     string   `json:"node,omitempty"`
	Commands []string `json:"commands,omitempty"`
	Manifest string   `json:"manifest,omitempty"`
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
	// Key identifies the finding within a report (see KeyOf). Shared
	// diagnoses set it so that the same fact found by several probes is one
	// finding; the collector fills it in for every other finding.
	Key string `json:"key,omitempty"`
	// CausedBy is the Key of the finding that is this one's root cause: this
	// finding is a symptom of it, and carries its root cause and fixes.
	CausedBy string `json:"causedBy,omitempty"`
}

// KeyOf is the identity of a finding: its ID, its subject, and a qualifier
// for facts about one subject that differ in a detail (the destination a
// node has no route to). Two findings with one key are one fact.
func KeyOf(id string, s *Subject, qualifier string) string {
	k := id
	if s != nil {
		k += "|" + s.String()
	}
	if qualifier != "" {
		k += "|" + qualifier
	}
	return k
}

// WithKey returns f with its key set from its ID, subject and qualifier.
func (f Finding) WithKey(qualifier string) Finding {
	f.Key = KeyOf(f.ID, f.Subject, qualifier)
	return f
}

// Symptom returns f as a symptom of cause: it links to the cause and carries
// the cause's root cause and fixes, so the same fact reads the same wherever
// it is met. f keeps its own title, subject and evidence.
func (f Finding) Symptom(cause Finding) Finding {
	f.CausedBy = cause.Key
	f.RootCause = cause.RootCause
	f.Fixes = cause.Fixes
	f.References = cause.References
	return f
}
