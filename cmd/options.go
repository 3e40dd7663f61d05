package cmd

import (
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
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
	Targets           []string
	From, To          string
	PolicyLive        string
	Agent             AgentOptions
	MaxPairs          int
	MetadataAddress   string
	Service           string
	PortProfile       string

	name      string                // command name for messages: netsleuth or kubectl netsleuth
	catalogue func() []probes.Probe // every probe the binary has
	selected  []probes.Probe
	format    report.Format
	namespace string // --namespace when given, else "" for all namespaces
	outputSet bool   // -o or --output-file given: never start the TUI
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
	fs.StringArrayVar(&o.Targets, "target", nil, "external `target` for reachability probes: IP, CIDR or host:port (repeatable)")
	fs.StringVar(&o.From, "from", "", "source pod of a policy question: `namespace/pod`")
	fs.StringVar(&o.To, "to", "", "destination of a policy question: `namespace/pod[:port[/proto]]`")
	fs.StringVar(&o.PolicyLive, "policy-live", "standin", "verify a --from/--to policy answer with real traffic: `mode` standin (a never-ready pod with the source's labels on its node), ephemeral (a container added to the source pod) or off")
	fs.IntVar(&o.MaxPairs, "max-pairs", 0, "most cross-node pod pairs pod-to-pod tests; larger clusters are sampled (0: the probe's default)")
	fs.StringVar(&o.MetadataAddress, "metadata-address", "", "cloud metadata `host:port` the exposure probe tries from a pod (default 169.254.169.254:80)")
	fs.StringVar(&o.Service, "service", "", "Service pod-to-service tests: `namespace/name` (default: a temporary Service in front of the agents)")
	fs.StringVar(&o.PortProfile, "port-profile", "", "node port profile node-ports checks: `name` from assets/node-ports.yaml (default kubeadm)")
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
	switch o.PolicyLive {
	case "standin", "ephemeral", "off":
	default:
		return usageErrorf("--policy-live must be standin, ephemeral or off (got %q)", o.PolicyLive)
	}
	if o.Parallel < 1 {
		return usageErrorf("--parallel must be at least 1 (got %d)", o.Parallel)
	}
	if len(o.selected) == 0 {
		return usageErrorf("no probe selected; pass --probe ID (run `%s probes` to list them)", o.name)
	}
	return o.validateInputs()
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
	return probes.RunnerOptions{Parallel: o.Parallel, ProbeTimeout: o.ProbeTimeout}
}

func (o *CheckOptions) env() probes.Options {
	return probes.Options{Targets: o.Targets, From: o.From, To: o.To, PolicyLive: o.PolicyLive, MaxPairs: o.MaxPairs, MetadataAddress: o.MetadataAddress,
		Service: o.Service, PortProfile: o.PortProfile}
}
