package cmd

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// DefaultAgentImage is the public agent image for this release (the binary
// itself, static); --agent-image overrides it, e.g. with a mirror.
func DefaultAgentImage() string {
	tag := version
	if tag == "" || tag == "dev" {
		tag = "latest"
	}
	return "netsleuth/netsleuth:" + tag
}

// AgentOptions are the flags of the in-cluster agents.
type AgentOptions struct {
	Image        string
	PullPolicy   string
	Namespace    string
	StartTimeout time.Duration
	// RunID, when set (the hidden --run-id), is the run's ID instead of a
	// random one: tests that prepare objects for a run use it.
	RunID string
}

// runIDPattern is what --run-id takes: a suffix of DNS labels.
var runIDPattern = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// AddFlags adds the agent flags to fs.
func (a *AgentOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&a.Image, "agent-image", DefaultAgentImage(), "`image` of the in-cluster agent (override for air-gapped clusters)")
	fs.StringVar(&a.PullPolicy, "agent-pull-policy", string(corev1.PullIfNotPresent), "agent image pull `policy`: Always, IfNotPresent or Never")
	fs.StringVar(&a.Namespace, "agent-namespace", "", "run agents in this existing `namespace` instead of a namespace of the run's own")
	fs.DurationVar(&a.StartTimeout, "agent-start-timeout", agent.DefaultStartTimeout, "how long an agent pod may take to start")
	fs.StringVar(&a.RunID, "run-id", "", "the run's `id` (names and labels of what it creates) instead of a random one; two live runs must never share one")
	_ = fs.MarkHidden("run-id")
}

// runID is --run-id, or a new random ID.
func (a *AgentOptions) runID() string {
	if a.RunID != "" {
		return a.RunID
	}
	return probes.NewRunID()
}

// validate checks the agent flags.
func (a *AgentOptions) validate() error {
	switch corev1.PullPolicy(a.PullPolicy) {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return usageErrorf("--agent-pull-policy must be Always, IfNotPresent or Never (got %q)", a.PullPolicy)
	}
	if a.Image == "" {
		return usageErrorf("--agent-image must not be empty")
	}
	if a.RunID != "" && !runIDPattern.MatchString(a.RunID) {
		return usageErrorf("--run-id must be 1 to 16 lowercase letters or digits, e.g. --run-id e2e1 (got %q)", a.RunID)
	}
	return nil
}

// manager builds the run's agent manager.
func (a *AgentOptions) manager(kube kubernetes.Interface, cfg *rest.Config, runID string) *agent.Manager {
	return agent.NewManager(kube, cfg, agent.Config{RunID: runID, Image: a.Image,
		PullPolicy: corev1.PullPolicy(a.PullPolicy), Namespace: a.Namespace, StartTimeout: a.StartTimeout})
}

// closeAgents deletes the run's agents on a fresh context, also after
// Ctrl-C or --timeout, and reports a failure on errOut.
func (o *CheckOptions) closeAgents(env *probes.Env) {
	m, ok := env.Agents.(*agent.Manager)
	if !ok || m == nil {
		return
	}
	ctx, cancel := contextWithTimeout(60 * time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		fmt.Fprintf(o.ErrOut, "%s: could not delete the agents of this run (%v); run `%s cleanup`\n", o.name, oneLine(err.Error()), o.name)
	}
}

func newAgentCommand() *cobra.Command {
	c := &cobra.Command{
		Use:    "agent",
		Short:  "The in-cluster agent (runs inside the pods netsleuth creates)",
		Hidden: true,
	}
	var echoPort, httpPort int
	var listen bool
	var exitAfter time.Duration
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve TCP and UDP echo and HTTP until SIGTERM (an agent pod's main process)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if exitAfter > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, exitAfter)
				defer cancel()
			}
			return agent.Serve(ctx, echoPort, httpPort, listen)
		},
	}
	serve.Flags().IntVar(&echoPort, "port", agent.EchoPort, "TCP and UDP echo port")
	serve.Flags().IntVar(&httpPort, "http-port", agent.HTTPPort, "HTTP port (/healthz)")
	serve.Flags().BoolVar(&listen, "listen", true, "open the listeners (node agents do not)")
	serve.Flags().DurationVar(&exitAfter, "exit-after", 0, "exit after this long (ephemeral containers, which cannot be removed; 0: run until SIGTERM)")
	exec := &cobra.Command{
		Use:   "exec",
		Short: "Read one JSON request on stdin, run its operations, write one JSON response",
		Long: "exec reads one JSON request (at most 1 MiB) on stdin, runs its operations and writes one JSON response\n" +
			"(after one JSON line per operation as it finishes, {\"op\": index, \"result\": …}, when the request says \"progress\": true).\n" +
			"A request it refuses (not one JSON request, too large, an unknown op, a bound exceeded, a file outside\n" +
			"/proc/sys/net and /sys/class/net) runs nothing: the response's \"error\" says why, and it exits 2.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			err := agent.Exec(c.Context(), c.InOrStdin(), c.OutOrStdout())
			if _, refused := errors.AsType[*ops.Refusal](err); refused {
				return &exitError{code: ExitUsage, msg: oneLine("the agent refused the request: " + err.Error()), err: err}
			}
			if err != nil {
				return &exitError{code: ExitFailing, msg: oneLine(err.Error()), err: err}
			}
			return nil
		},
	}
	capture := &cobra.Command{
		Use:   "capture",
		Short: "Read one JSON capture request line on stdin, stream a pcap to stdout until a bound or stdin closes (node agents)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return agent.CaptureMain(c.Context(), c.InOrStdin(), c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.AddCommand(serve, exec, capture)
	return c
}
