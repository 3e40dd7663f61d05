package model

import "time"

// EventType says what happened in a probe's life.
type EventType string

// The events a probe run emits, in order: started, any number of progress and
// finding events, then finished.
const (
	EventStarted  EventType = "started"
	EventProgress EventType = "progress"
	EventFinding  EventType = "finding"
	EventFinished EventType = "finished"
)

// Event is one step of a probe's run. The TUI and the headless reporters are two
// sinks of the same stream of events.
type Event struct {
	RunID string `json:"runId"`
	// Probe is empty in a progress event of the session itself (the
	// agents it starts for the probes as the run begins).
	Probe   string    `json:"probe"`
	Type    EventType `json:"type"`
	Time    time.Time `json:"time"`
	Message string    `json:"message,omitempty"` // progress: the stage now running
	Finding *Finding  `json:"finding,omitempty"` // finding events only
}

// Sink receives events. Implementations must be safe for concurrent use:
// probes run concurrently.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Emit calls f(e).
func (f SinkFunc) Emit(e Event) { f(e) }

// ProbeInfo describes a probe for listings, help text and the TUI.
type ProbeInfo struct {
	ID          string       `json:"id"`
	Title       string       `json:"title"`
	Scenario    string       `json:"scenario"` // letter in the scenario catalogue
	Description string       `json:"description"`
	RBAC        []Permission `json:"rbac"`
	Inputs      []Input      `json:"inputs,omitempty"`
	// Default probes run when no --probe flag is given: they need no extra input.
	Default bool `json:"default"`
	// Agents are the in-cluster agents the probe may start. A run derives
	// from them the PodSecurity level of its agent namespace (privileged
	// only when a probe may start node agents) and starts, as it begins,
	// the kinds its probes start on the whole node sample.
	Agents []AgentUse `json:"agents,omitempty"`
}

// AgentKind says where an agent pod's network lives.
type AgentKind string

// The kinds of agent a probe can start.
const (
	// AgentPod is a pod on the pod network, PodSecurity "restricted".
	AgentPod AgentKind = "pod"
	// AgentPeer is a second pod-network agent on the same node, for
	// same-node pod-to-pod traffic.
	AgentPeer AgentKind = "peer"
	// AgentNode is a privileged hostNetwork pod with the host's root
	// mounted read-only at /host: it sees the node's routes, sysctls and
	// iptables. Probes announce it before asking for it.
	AgentNode AgentKind = "node"
)

// AgentUse is one kind of agent a probe may start.
type AgentUse struct {
	Kind AgentKind `json:"kind"`
	// Sample is true when the probe starts this kind on every node of the
	// run's node sample (--max-nodes) whenever it runs, so the run can
	// start them before the probe asks; false when only on nodes the probe
	// picks as it goes (where a path fails, or a sub-sample of its own).
	Sample bool `json:"sample,omitempty"`
}

// Permission is one RBAC verb on one resource a probe needs.
type Permission struct {
	Group       string   `json:"group,omitempty"`
	Resource    string   `json:"resource"`
	Subresource string   `json:"subresource,omitempty"`
	Verbs       []string `json:"verbs"`
}

// Input is an extra flag a probe takes.
type Input struct {
	Flag        string `json:"flag"` // the flag name without dashes, e.g. "target"
	Description string `json:"description"`
	Required    bool   `json:"required"`
	// Kinds are the kinds of value the probe takes for this flag, for flags
	// whose values vary in kind (--target: ip, cidr, name); empty means any.
	Kinds []string `json:"kinds,omitempty"`
	// Example is a valid value, quoted in the usage error for a bad one.
	Example string `json:"example,omitempty"`
	// With names a flag this probe needs beside this one ("to" for the
	// policy probe's --from): without it the probe does not use this flag,
	// so a flag given alone that no selected probe uses is a usage error.
	With string `json:"with,omitempty"`
	// Check validates one value of the flag before anything is created; nil
	// takes any value. Its error is a phrase completing "--flag VALUE ...",
	// e.g. "is negative; pass 0 for the probe's default or a positive count".
	Check func(value string) error `json:"-"`
}
