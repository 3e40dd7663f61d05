package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"github.com/netsleuth/netsleuth/probes/agent"
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func newCleanupCommand(app App, cf *genericclioptions.ConfigFlags) *cobra.Command {
	name := app.displayName()
	var dryRun bool
	c := &cobra.Command{
		Use:   "cleanup",
		Short: "Delete what killed netsleuth runs left in the cluster (agent namespaces, pods, services)",
		Long: "cleanup deletes every namespace, pod and service labelled " + agent.Selector + ",\n" +
			"which is what a netsleuth run creates and normally deletes itself.",
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
			found, err := agent.Cleanup(ctx, kube, dryRun)
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			for _, f := range found {
				fmt.Fprintf(app.Streams.Out, "%s %s\n", verb, f)
			}
			if len(found) == 0 {
				fmt.Fprintln(app.Streams.Out, "nothing to clean up")
			}
			if err != nil {
				return &exitError{code: ExitFailing, msg: oneLine(fmt.Sprintf("cleanup did not finish: %v", err)), err: err}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be deleted")
	return c
}
