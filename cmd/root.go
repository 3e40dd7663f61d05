// Package cmd holds netsleuth's cobra commands: the TUI (the bare command),
// check, probes and version. It also detects when it runs as a kubectl plugin.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/netsleuth/netsleuth/probes"
)

// App is what the commands need from main.
type App struct {
	Streams genericiooptions.IOStreams
	// Probes returns every probe the binary has.
	Probes func() []probes.Probe
	// Argv0 is os.Args[0]; a base name of kubectl-netsleuth makes help text
	// say "kubectl netsleuth".
	Argv0 string
}

// PluginName is the binary name kubectl looks for.
const PluginName = "kubectl-netsleuth"

// displayName is how the user invoked us: "netsleuth" or "kubectl netsleuth".
func (a App) displayName() string {
	base := strings.TrimSuffix(filepath.Base(a.Argv0), ".exe")
	if base == PluginName {
		return "kubectl netsleuth"
	}
	return "netsleuth"
}

// Main runs the command line with the process's streams and arguments and
// returns the exit code. SIGINT, SIGTERM and SIGHUP (the terminal went
// away, e.g. a dropped ssh session or a closed tmux pane) cancel the run;
// cleanups still run, and a second signal kills the process.
func Main(all func() []probes.Probe) int {
	setMemoryLimit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal gets the default behaviour
	}()
	app := App{
		Streams: genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr},
		Probes:  all,
		Argv0:   os.Args[0],
	}
	return Execute(ctx, app, os.Args[1:])
}

// memoryLimit is the soft limit (runtime/debug.SetMemoryLimit) on the Go
// runtime's memory when GOMEMLIMIT does not set one. A run holds its reads
// of the cluster until it ends (about 200 MB of objects for 60,000 pods),
// while decoding their pages makes several times that in garbage; with the
// collector's default headroom alone the process peaked at 600–750 MiB.
// Below the limit nothing changes; near it the collector runs sooner, and
// a heap that outgrows it costs CPU, never an error.
const memoryLimit = 320 << 20

// setMemoryLimit applies memoryLimit unless GOMEMLIMIT is set.
func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}

// Execute runs the command line args and returns the exit code: 0 when no
// finding failed, 1 when one did, 2 for usage and configuration errors. Errors
// are printed to app.Streams.ErrOut as one line.
func Execute(ctx context.Context, app App, args []string) int {
	root := NewRootCommand(app)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	name := app.displayName()
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(app.Streams.ErrOut, "%s: %s\n", name, oneLine(ee.msg))
		}
		return ee.code
	}
	// Anything else comes from cobra: an unknown command or a bad argument.
	fmt.Fprintf(app.Streams.ErrOut, "%s: %s; run `%s --help` for usage\n", name, oneLine(err.Error()), name)
	return ExitUsage
}

// NewRootCommand builds the command tree.
func NewRootCommand(app App) *cobra.Command {
	name := app.displayName()
	cf := genericclioptions.NewConfigFlags(true)
	o := NewCheckOptions(app, cf)
	root := &cobra.Command{
		Use:   "netsleuth",
		Short: "Diagnose Kubernetes cluster networking and explain the fix",
		Long: "netsleuth runs network probes against the cluster in your kubeconfig and explains every\n" +
			"failure: the evidence, the root cause in one sentence, and the fix.\n\n" +
			"On a terminal it shows live panes; otherwise, or with -o/--output-file, it behaves like `" + name + " check`.",
		Example: fmt.Sprintf("  %[1]s\n  %[1]s check -o junit --output-file netsleuth.xml\n  %[1]s check --probe policy --from default/client --to default/server:80", name),
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := o.Complete(c); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			if !o.outputSet && isTerminal(o.Out) {
				return o.RunTUI(c.Context())
			}
			return o.Run(c.Context())
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: name},
	}
	root.SetIn(app.Streams.In)
	root.SetOut(app.Streams.Out)
	root.SetErr(app.Streams.ErrOut)
	cf.AddFlags(root.PersistentFlags())
	o.AddFlags(root.Flags())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%s; run `%s --help` for the flags", err, c.CommandPath())
	})
	root.AddCommand(
		newCheckCommand(app, cf),
		newProbesCommand(app),
		newVersionCommand(app),
		newCleanupCommand(app, cf),
		newCaptureCommand(app, cf),
		newTraceCommand(app, cf),
		newAgentCommand(),
		newRBACCommand(app),
	)
	return root
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}
