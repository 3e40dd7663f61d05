// Package probes defines what a probe is and runs probes concurrently. Each
// probe lives in its own package under probes/ and never imports ui/.
package probes

import (
	"context"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// Probe is one diagnosis: it reads or tests the cluster and records findings.
type Probe interface {
	Info() model.ProbeInfo
	// Run records its findings through rec and returns an error only when it
	// could not finish; the runner turns that error into an error finding that
	// names the missing permission or the stage that failed.
	Run(ctx context.Context, env *Env, rec Recorder) error
}

// Recorder is what a running probe reports to.
type Recorder interface {
	// Stage announces the step the probe is now in ("listing pods"); a timeout
	// or an error is reported against the last stage announced.
	Stage(msg string)
	// Finding records one verdict. The runner fills in Finding.Probe.
	Finding(f model.Finding)
	// Cleanup registers fn to run after the probe ends, also when the run is
	// cancelled or timed out; fn gets a fresh context with its own deadline.
	Cleanup(fn func(ctx context.Context) error)
}

// Env is what every probe gets: clients and the run's options.
type Env struct {
	RunID      string
	Kube       kubernetes.Interface
	RESTConfig *rest.Config
	// Namespace is the namespace from --namespace, or "" for all namespaces.
	Namespace string
	Options   Options
	// Agents runs the in-cluster agents active probes send traffic from;
	// nil when the run has none (unit tests, static probes only).
	Agents Agents
	// Cache is the run's shared read of the cluster (each list and each
	// node's configz fetched once for every probe); Snap falls back to a
	// fresh one when it is nil.
	Cache *kube.Snapshot
	// API, when set, has seen every API request of the run (its Wrap is
	// on the client's transport): the runner asks it whether the API server
	// stopped answering while a probe ran.
	API *APIHealth
}

// snapMu guards the lazy creation of an Env's snapshot.
var snapMu sync.Mutex

// Snap is the run's snapshot of the cluster: every probe reads lists,
// configz and shared objects through it.
func (e *Env) Snap() *kube.Snapshot {
	snapMu.Lock()
	defer snapMu.Unlock()
	if e.Cache == nil {
		e.Cache = kube.NewSnapshot(e.Kube, e.Namespace)
	}
	return e.Cache
}

// Options holds the inputs of probes that take extra flags.
type Options struct {
	// Targets are --target values: IPs, CIDRs or host:port.
	Targets []string
	// From and To name the two ends of a policy question: "ns/pod", and for
	// To an optional ":port" or ":port/proto".
	From, To string
	// PolicyLive is how the policy probe verifies a --from/--to answer with
	// real traffic: "standin" (also ""), "ephemeral" or "off".
	PolicyLive string
	// MaxPairs bounds the pod-to-pod matrix (ordered cross-node pairs);
	// larger clusters are sampled. Zero means the probe's default.
	MaxPairs int
	// MaxNodes bounds the nodes active probes start agents on (--max-nodes,
	// see AgentNodes); zero means kube.DefaultMaxNodes.
	MaxNodes int
	// MetadataAddress is the cloud metadata endpoint (host:port) the
	// exposure probe tries from a pod; "" means 169.254.169.254:80.
	MetadataAddress string
	// Service is the Service ("namespace/name") pod-to-service tests; ""
	// means a temporary Service in front of the run's pod agents.
	Service string
	// PortProfile names the node-ports profile (assets/node-ports.yaml);
	// "" means the default profile.
	PortProfile string
	// TracePort is trace's --port ("P[/proto]"), "" when TO carries the port.
	TracePort string
	// Capture is "off" when probes must not capture the packets of their
	// failing paths (--capture); CaptureDir is where they save the pcaps.
	Capture, CaptureDir string
}
