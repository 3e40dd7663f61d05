package probes

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// AgentKind says where an agent pod's network lives (model.AgentKind).
type AgentKind = model.AgentKind

// The kinds of agent a probe can ask for (see model.AgentPod).
const (
	AgentPod  = model.AgentPod
	AgentPeer = model.AgentPeer
	AgentNode = model.AgentNode
)

// Agent is one agent pod of the run.
type Agent struct {
	Kind      AgentKind
	Node      string
	Namespace string
	Pod       string
	IP        string
	// Err is set when the agent did not start; it is an *AgentStartError
	// when the cluster said why.
	Err error
}

// Ref names the agent for evidence: "pod ns/name on node".
func (a Agent) Ref() string {
	return fmt.Sprintf("%s agent %s/%s (%s) on node %s", a.Kind, a.Namespace, a.Pod, a.IP, a.Node)
}

// AgentStartError explains why an agent pod never ran.
type AgentStartError struct {
	Kind   AgentKind
	Node   string
	Pod    string
	Reason string // ErrImageNeverPull, ImagePullBackOff, PodSecurity, Unschedulable, Timeout, ...
	Detail string // the cluster's message
}

func (e *AgentStartError) Error() string {
	return fmt.Sprintf("%s agent %s on node %s did not start: %s: %s", e.Kind, e.Pod, e.Node, e.Reason, e.Detail)
}

// Agents creates the run's agent pods on demand and runs operations in them.
// One instance serves every probe of a run; it is safe for concurrent use.
// cmd builds it (package probes/agent) and releases it after the run.
type Agents interface {
	// Start makes sure an agent of kind runs on each of nodes, creating the
	// missing ones concurrently, and returns them in the order of nodes.
	// An agent that cannot start has Err set; Start itself does not fail.
	Start(ctx context.Context, kind AgentKind, nodes []string) []Agent
	// Exec runs req in agent a and returns its response.
	Exec(ctx context.Context, a Agent, req ops.Request) (ops.Response, error)
	// Namespace is where the agents live (it may not exist yet).
	Namespace() string
	// Prepare readies that namespace before any agent starts (the run's
	// own one created, the run's Lease in it first), for a probe that puts
	// an object of its own there while its agents start.
	Prepare(ctx context.Context) error
	// Leftovers lists namespaces and pods left by earlier, killed runs,
	// reading the lists snap holds already. It returns them only to its
	// first caller in a run, so one probe reports them.
	Leftovers(ctx context.Context, snap *kube.Snapshot) ([]string, error)
}

// Streamer is implemented by agents that can stream a long-running agent
// command (a packet capture) instead of one JSON answer.
type Streamer interface {
	// Stream runs `netsleuth agent <verb>` in a, streaming stdin, stdout
	// and stderr, until it exits or ctx ends.
	Stream(ctx context.Context, a Agent, verb string, stdin io.Reader, stdout, stderr io.Writer) error
}

// Why an agent that had started stopped answering mid-run (AgentLostError.Reason).
const (
	LostAPIServer   = "APIServerUnreachable" // the API server stopped answering (restarted, overloaded, cut off)
	LostPodDeleted  = "PodDeleted"           // someone or something deleted the agent pod
	LostExited      = "AgentExited"          // the agent container is no longer running
	LostNodeDown    = "NodeNotReady"         // the node is NotReady
	LostKubelet     = "KubeletUnreachable"   // the API server could not reach the node's kubelet
	LostStreamCut   = "ExecStreamCut"        // the exec stream broke while the agent answered
	LostExecStopped = "ExecKilled"           // the agent's exec process was killed mid-request
)

// AgentLostError says why an agent that had started stopped answering
// during the run: the exec into it failed and the cluster was asked why.
type AgentLostError struct {
	Kind      AgentKind
	Node      string
	Namespace string
	Pod       string
	Reason    string // one of the Lost* constants
	Detail    string // what happened, in words
	Err       error  // the exec's own error
}

func (e *AgentLostError) Error() string {
	return fmt.Sprintf("%s agent %s/%s on node %s was lost mid-run: %s: %s (%v)", e.Kind, e.Namespace, e.Pod, e.Node, e.Reason, e.Detail, e.Err)
}

func (e *AgentLostError) Unwrap() error { return e.Err }

// Liveness is implemented by agents that know whether an agent they started
// still runs (probes/agent's Manager, from the watch it keeps of its pods).
// A probe whose traffic to an agent failed asks it before blaming the
// network: traffic to a deleted agent fails too.
type Liveness interface {
	// Lost returns an *AgentLostError when a's pod is gone, being deleted
	// or no longer running, and nil when it runs or nothing is known.
	Lost(a Agent) error
}

// Planner is implemented by agents that must know, before their first pod,
// every kind a run may start: probes/agent's Manager creates the run's own
// namespace at the PodSecurity level those kinds need (privileged only for
// node agents), since admission may judge a relabelled namespace by its old
// level for a while. The session plans from the probes' declared Agents.
type Planner interface {
	Plan(kinds []AgentKind)
}

// AgentKinds is every kind of agent the probes of ps may start with options
// o: what a run's namespace must admit. A probe --read-only left out, or one
// that creates nothing with o, starts none.
func AgentKinds(ps []Probe, o Options) []AgentKind {
	var out []AgentKind
	for _, p := range ps {
		if !startsAgents(p, o) {
			continue
		}
		for _, u := range AgentUses(p, o) {
			if !slices.Contains(out, u.Kind) {
				out = append(out, u.Kind)
			}
		}
	}
	return out
}

// SampleAgents maps each kind of agent that probes of ps start on the whole
// node sample to those probes' IDs: what a run can start as it begins.
func SampleAgents(ps []Probe, o Options) map[AgentKind][]string {
	out := map[AgentKind][]string{}
	for _, p := range ps {
		if !startsAgents(p, o) {
			continue
		}
		for _, u := range AgentUses(p, o) {
			if u.Sample && !slices.Contains(out[u.Kind], p.Info().ID) {
				out[u.Kind] = append(out[u.Kind], p.Info().ID)
			}
		}
	}
	return out
}

// AgentUser is implemented by a probe whose agents depend on its options
// (with --from it sends as the user's workload instead of from the node
// sample); AgentsFor then says what Info().Agents says for o.
type AgentUser interface {
	AgentsFor(o Options) []model.AgentUse
}

// AgentUses is the agents p may start with options o.
func AgentUses(p Probe, o Options) []model.AgentUse {
	if u, ok := p.(AgentUser); ok {
		return u.AgentsFor(o)
	}
	return p.Info().Agents
}

func startsAgents(p Probe, o Options) bool {
	return !IsSkipped(p) && len(Writes(p, o)) > 0
}
