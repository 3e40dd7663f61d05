package cmd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"github.com/netsleuth/netsleuth/probes/agent"
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// printSurvey says what cleanup deleted (or would) and which live runs it
// left alone.
func printSurvey(w io.Writer, s agent.Survey, dryRun bool) {
	verb := "deleted"
	if dryRun {
		verb = "would delete"
	}
	for _, f := range s.Leftovers {
		fmt.Fprintf(w, "%s %s\n", verb, f)
	}
	if len(s.Leftovers) == 0 {
		fmt.Fprintln(w, "nothing to clean up")
	}
	if len(s.Live) == 0 {
		return
	}
	runs := "runs"
	if len(s.Live) == 1 {
		runs = "run"
	}
	fmt.Fprintf(w, "skipped %d live %s; a run killed moments ago counts as live until its Lease expires (at most %s), then run cleanup again:\n",
		len(s.Live), runs, agent.LeaseDuration)
	for _, r := range s.Live {
		fmt.Fprintf(w, "  %s\n", r)
	}
}

func newCleanupCommand(app App, cf *genericclioptions.ConfigFlags) *cobra.Command {
	name := app.displayName()
	var dryRun bool
	c := &cobra.Command{
		Use:   "cleanup",
		Short: "Delete what killed netsleuth runs left in the cluster (agent namespaces, pods, services, Leases)",
		Long: "cleanup deletes the namespaces, pods, services and Leases labelled " + agent.Selector + "\n" +
			"(what a netsleuth run creates and normally deletes itself) of runs that are over.\n\n" +
			"Each run renews a Lease (coordination.k8s.io) in its agent namespace while it lives; the objects\n" +
			"of a run whose Lease is renewed are left alone and counted as a live run. A run killed a moment\n" +
			"ago counts as live until its Lease expires, at most " + agent.LeaseDuration.String() + " after it stopped.",
		Example: fmt.Sprintf("  %[1]s cleanup --dry-run\n  %[1]s cleanup", name),
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, _, err := connect(c.Context(), cf)
			if err != nil {
				return err
			}
			kube, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return usageErrorf("cannot build a Kubernetes client: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context()), 2*time.Minute)
			defer cancel()
			s, err := agent.Cleanup(ctx, kube, dryRun)
			printSurvey(app.Streams.Out, s, dryRun)
			if err != nil {
				return &exitError{code: ExitFailing, msg: oneLine(fmt.Sprintf("cleanup did not finish: %v", err)), err: err}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be deleted")
	return c
}
