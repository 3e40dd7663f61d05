package cmd

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	pkube "github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/report"
)

// CheckOptions are the flags and resolved inputs of a run, shared by `check`
// and the bare command.
type CheckOptions struct {
	genericiooptions.IOStreams
	ConfigFlags *genericclioptions.ConfigFlags

	stats apiStats // API request counter for benchmarks (NETSLEUTH_API_STATS)

	ProbeIDs          []string
	Output            string
	OutputFile        string
	Timeout           time.Duration
	ProbeTimeout      time.Duration
	Parallel          int
	ExitZeroOnFailure bool
	ReadOnly          bool
	Targets           []string
	From, To          string
	PolicyLive        string
	Agent             AgentOptions
	MaxPairs          int
	MaxNodes          int
	MetadataAddress   string
	Service           string
	PortProfile       string
	Capture           string
	CaptureDir        string

	name      string                // command name for messages: netsleuth or kubectl netsleuth
	catalogue func() []probes.Probe // every probe the binary has
	selected  []probes.Probe
	format    report.Format
	namespace string         // --namespace when given, else "" for all namespaces
	outputSet bool           // -o or --output-file given: never start the TUI
	flags     *pflag.FlagSet // the command's flags, for the values given (Complete)

	// preflight runs after the connection is made, before any probe: a
	// command's own checks of its arguments against the cluster (trace).
	preflight func(ctx context.Context, env *probes.Env) error
	// finish completes the report before it is written.
	finish func(*model.Report)
}

// NewCheckOptions returns options with the flag defaults.
func NewCheckOptions(app App, cf *genericclioptions.ConfigFlags) *CheckOptions {
	return &CheckOptions{
		IOStreams:    app.Streams,
		ConfigFlags:  cf,
		Output:       string(report.Text),
		Timeout:      5 * time.Minute,
		ProbeTimeout: 60 * time.Second,
		Parallel:     probes.DefaultParallel,
		MaxNodes:     pkube.DefaultMaxNodes,
		name:         app.displayName(),
		catalogue:    app.Probes,
	}
}

// AddFlags adds the run flags (not the kube ones) to fs.
func (o *CheckOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.ProbeIDs, "probe", nil, "probe `ID` to run (repeatable; default: every default probe, see the probes command)")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "output `format`: "+strings.Join(report.Formats(), ", "))
	fs.StringVar(&o.OutputFile, "output-file", "", "write the report to this `file` instead of stdout")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "limit for the whole run (0: none)")
	fs.DurationVar(&o.ProbeTimeout, "probe-timeout", o.ProbeTimeout, "limit for each probe (0: none)")
	fs.IntVar(&o.Parallel, "parallel", o.Parallel, "how many probes run at once")
	fs.BoolVar(&o.ExitZeroOnFailure, "exit-zero-on-failure", false, "exit 0 even when a finding fails")
	fs.BoolVar(&o.ReadOnly, "read-only", false, "run only the probes that create nothing in the cluster (no agents); each other probe is one skip finding saying why (netsleuth-view is enough)")
	fs.StringArrayVar(&o.Targets, "target", nil, "`target` for reachability probes: an IPv4 address, IP:port or CIDR (external) or a DNS name (dns) (repeatable)")
	fs.StringVar(&o.From, "from", "", "your workload the questions are asked from: `namespace/pod` or namespace/deployment/name (external, pod-to-service; policy with --to, which also takes an IP or namespace/* for a matrix)")
	fs.StringVar(&o.To, "to", "", "destination of a policy question: `namespace/pod:port[/proto]`, namespace/svc/name:port, IP:port or CIDR:port")
	fs.StringVar(&o.PolicyLive, "policy-live", "standin", "how traffic is sent as the --from pod: `mode` standin (a never-ready pod with its labels on its node), ephemeral (a container added to the pod) or off (policy answers only statically)")
	fs.IntVar(&o.MaxPairs, "max-pairs", 0, "most cross-node pod pairs pod-to-pod tests; larger clusters are sampled (0: the probe's default)")
	fs.IntVar(&o.MaxNodes, "max-nodes", o.MaxNodes, "most nodes active probes start agents on: Ready nodes, those --from/--to name first, then a stable spread; the report says what was sampled")
	fs.StringVar(&o.MetadataAddress, "metadata-address", "", "cloud metadata `host:port` the exposure probe tries from a pod (default 169.254.169.254:80)")
	fs.StringVar(&o.Service, "service", "", "Service pod-to-service tests: `namespace/name` (default: a temporary Service in front of the agents)")
	fs.StringVar(&o.PortProfile, "port-profile", "", "node port profile node-ports checks: `name` from assets/node-ports.yaml (default kubeadm)")
	fs.StringVar(&o.Capture, "capture", "on", "capture the packets of failing paths on the node (pod veth and uplink) and classify them: on or off")
	fs.StringVar(&o.CaptureDir, "capture-dir", defaultCaptureDir(), "`directory` the pcaps of failing paths are saved in")
	o.Agent.AddFlags(fs)
}

// inputsGiven reports whether the probe requires inputs and every one of them
// was set on the command line.
func (o *CheckOptions) inputsGiven(fs *pflag.FlagSet, info model.ProbeInfo) bool {
	required := 0
	for _, in := range info.Inputs {
		if !in.Required {
			continue
		}
		required++
		if !fs.Changed(strings.TrimLeft(in.Flag, "-")) {
			return false
		}
	}
	return required > 0
}

// Complete resolves the flags into the probes to run and the namespace.
func (o *CheckOptions) Complete(cmd *cobra.Command) error {
	fs := cmd.Flags()
	o.flags = fs
	o.outputSet = fs.Changed("output") || fs.Changed("output-file")
	if fs.Changed("namespace") && o.ConfigFlags.Namespace != nil {
		o.namespace = *o.ConfigFlags.Namespace
	}
	all := o.catalogue()
	if len(o.ProbeIDs) == 0 {
		// Every default probe, plus the probes whose required inputs were given
		// (--target brings in external).
		for _, p := range all {
			if info := p.Info(); info.Default || o.inputsGiven(fs, info) {
				o.selected = append(o.selected, p)
			}
		}
		return nil
	}
	for _, id := range o.ProbeIDs {
		i := slices.IndexFunc(all, func(p probes.Probe) bool { return p.Info().ID == id })
		if i < 0 {
			return usageErrorf("unknown probe %q; run `%s probes` to list the probe IDs", id, o.name)
		}
		if !slices.Contains(o.selected, all[i]) {
			o.selected = append(o.selected, all[i])
		}
	}
	return nil
}

// Validate checks the flag values.
func (o *CheckOptions) Validate() error {
	f, err := report.ParseFormat(o.Output)
	if err != nil {
		return usageErrorf("unknown output format %q; use -o %s", o.Output, strings.Join(report.Formats(), ", -o "))
	}
	o.format = f
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--timeout", o.Timeout}, {"--probe-timeout", o.ProbeTimeout}} {
		if d.v < 0 {
			return usageErrorf("%s must not be negative (got %s); pass a duration such as 5m, or 0 for no limit", d.flag, d.v)
		}
	}
	if err := o.Agent.validate(); err != nil {
		return err
	}
	if o.Capture != "on" && o.Capture != "off" {
		return usageErrorf("--capture must be on or off (got %q)", o.Capture)
	}
	switch o.PolicyLive {
	case "standin", "ephemeral", "off":
	default:
		return usageErrorf("--policy-live must be standin, ephemeral or off (got %q)", o.PolicyLive)
	}
	if o.MaxNodes < 1 {
		return usageErrorf("--max-nodes must be at least 1 (got %d); it bounds the nodes active probes start agents on", o.MaxNodes)
	}
	if o.Parallel < 1 {
		return usageErrorf("--parallel must be at least 1 (got %d)", o.Parallel)
	}
	if len(o.selected) == 0 {
		return usageErrorf("no probe selected; pass --probe ID (run `%s probes` to list them)", o.name)
	}
	if err := o.validateTargets(); err != nil {
		return err
	}
	if err := o.validateInputs(); err != nil {
		return err
	}
	if o.flags != nil {
		if err := o.validateInputValues(o.flags); err != nil {
			return err
		}
	}
	if err := o.validateFlagUse(); err != nil {
		return err
	}
	if o.ReadOnly {
		o.selected = probes.ReadOnly(o.selected, o.env())
	}
	return nil
}

// validateTargets checks every --target parses and that a selected probe
// takes its kind, so a value no probe can use is an error before anything
// is created.
func (o *CheckOptions) validateTargets() error {
	takers := map[string][]string{} // kind → probes
	for _, p := range o.selected {
		for _, in := range p.Info().Inputs {
			if in.Flag == "target" {
				for _, k := range in.Kinds {
					takers[k] = append(takers[k], p.Info().ID)
				}
			}
		}
	}
	for _, v := range o.Targets {
		kind, err := probes.TargetKind(v)
		if err != nil {
			return usageErrorf("--target %v; pass an IPv4 address, IP:port, CIDR or DNS name, e.g. --target 192.168.2.10:80", err)
		}
		if len(takers[kind]) == 0 {
			what, probe := "an IP or CIDR", "external"
			if kind == probes.TargetName {
				what, probe = "a DNS name", "dns"
			}
			return usageErrorf("--target %q is %s and no selected probe takes one (external tries IPs and CIDRs, dns resolves names); add --probe %s", v, what, probe)
		}
	}
	return nil
}

// validateInputs checks that explicitly chosen probes get their required flags.
func (o *CheckOptions) validateInputs() error {
	if len(o.ProbeIDs) == 0 {
		return nil
	}
	given := map[string]bool{"target": len(o.Targets) > 0, "from": o.From != "", "to": o.To != ""}
	for _, p := range o.selected {
		for _, in := range p.Info().Inputs {
			flag := strings.TrimLeft(in.Flag, "-")
			if set, known := given[flag]; in.Required && known && !set {
				return usageErrorf("probe %s needs --%s (%s)", p.Info().ID, flag, strings.TrimSuffix(in.Description, "."))
			}
		}
	}
	return nil
}

// ids lists the selected probe IDs in order.
func (o *CheckOptions) ids() []string {
	out := make([]string, len(o.selected))
	for i, p := range o.selected {
		out[i] = p.Info().ID
	}
	return out
}

func (o *CheckOptions) runnerOptions() probes.RunnerOptions {
	return probes.RunnerOptions{Parallel: o.Parallel, ProbeTimeout: o.ProbeTimeout, Invocation: o.name}
}

func (o *CheckOptions) env() probes.Options {
	return probes.Options{Targets: o.Targets, From: o.From, To: o.To, PolicyLive: o.PolicyLive, MaxPairs: o.MaxPairs, MaxNodes: o.MaxNodes, MetadataAddress: o.MetadataAddress,
		Service: o.Service, PortProfile: o.PortProfile, Capture: o.Capture, CaptureDir: o.CaptureDir}
}

// defaultCaptureDir is <user cache dir>/netsleuth/captures.
func defaultCaptureDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "netsleuth-captures")
	}
	return filepath.Join(dir, "netsleuth", "captures")
}
