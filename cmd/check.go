package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	pkube "github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/report"
)

func newCheckCommand(app App, cf *genericclioptions.ConfigFlags) *cobra.Command {
	o := NewCheckOptions(app, cf)
	name := app.displayName()
	c := &cobra.Command{
		Use:   "check",
		Short: "Run probes headless and write a report (text, json, yaml, junit)",
		Long: "check runs the selected probes without the TUI and writes a report.\n\n" +
			"Exit codes: 0 no finding failed; 1 a finding failed or errored (unless --exit-zero-on-failure);\n" +
			"2 bad flags, bad kubeconfig, or the API server is unreachable, fails TLS or rejects the credentials.",
		Example: fmt.Sprintf("  %[1]s check\n  %[1]s check --probe dns -o json\n  %[1]s check -o junit --output-file report.xml --exit-zero-on-failure", name),
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := o.Complete(c); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(c.Context())
		},
	}
	o.AddFlags(c.Flags())
	return c
}

// prepare connects to the cluster and builds the probes' environment.
func (o *CheckOptions) prepare(ctx context.Context) (*probes.Env, model.Cluster, error) {
	cfg, cluster, err := connect(ctx, o.ConfigFlags)
	if err != nil {
		return nil, cluster, err
	}
	o.stats.wrap(cfg)
	api := probes.NewAPIHealth()
	cfg.Wrap(api.Wrap)
	kube, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return nil, cluster, usageErrorf("cannot build a Kubernetes client for %s: %v", cluster.Server, err)
	}
	env := &probes.Env{
		RunID:      o.Agent.runID(),
		Kube:       kube,
		RESTConfig: cfg,
		Namespace:  o.namespace,
		Options:    o.env(),
		Cache:      pkube.NewSnapshot(kube, o.namespace),
		API:        api,
	}
	if !o.ReadOnly { // nothing a --read-only run does can create an agent
		env.Agents = o.Agent.manager(kube, cfg, env.RunID)
	}
	if err := probes.Preflight(ctx, o.selected, env); err != nil {
		return nil, cluster, usageErrorf("%v", err)
	}
	return env, cluster, nil
}

// runContext bounds ctx by --timeout.
func (o *CheckOptions) runContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if o.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	cause := fmt.Errorf("the whole run exceeded --timeout=%s: %w", o.Timeout, context.DeadlineExceeded)
	return context.WithTimeoutCause(ctx, o.Timeout, cause)
}

// Run runs the probes headless and writes the report.
func (o *CheckOptions) Run(ctx context.Context) error {
	env, cluster, err := o.prepare(ctx)
	if err != nil {
		return err
	}
	defer o.stats.print(o.ErrOut)
	if o.preflight != nil {
		if err := o.preflight(ctx, env); err != nil {
			return err
		}
	}
	out, closeOut, err := o.output()
	if err != nil {
		return err
	}
	defer closeOut()
	var progress model.Sink
	if isTerminal(o.ErrOut) {
		progress = progressSink(o.ErrOut)
	}
	runCtx, cancel := o.runContext(ctx)
	defer cancel()
	sess := o.startSession(runCtx, env, cluster, progress, nil)
	defer o.closeSession(sess)
	sess.Wait()
	rep := sess.Report()
	writeHeapProfile(o.ErrOut)
	if o.finish != nil {
		o.finish(rep)
	}
	color := o.OutputFile == "" && isTerminal(out) && os.Getenv("NO_COLOR") == ""
	if err := report.Write(out, o.format, rep, report.Options{Color: color}); err != nil {
		return &exitError{code: ExitFailing, msg: oneLine(err.Error()), err: err}
	}
	return o.exitFor(rep)
}

// startSession starts the selected probes in a session: check and the TUI
// both run probes through it. extra are probes a rerun may add (the TUI's
// t and p).
func (o *CheckOptions) startSession(ctx context.Context, env *probes.Env, cluster model.Cluster, sink model.Sink, extra []probes.Probe) *probes.Session {
	return probes.Start(ctx, o.selected, env, probes.SessionOptions{Runner: o.runnerOptions(), Cluster: cluster, Sink: sink, Extra: extra})
}

// closeSession ends the session: it stops what still runs, waits for the
// probes' cleanups and deletes the run's agents, saying so when that fails.
func (o *CheckOptions) closeSession(s *probes.Session) error {
	err := s.Close()
	if err != nil {
		fmt.Fprintf(o.ErrOut, "%s: could not delete the agents of this run (%v); run `%s cleanup`\n", o.name, oneLine(err.Error()), o.name)
	}
	return err
}

// exitFor maps a report to the command's result.
func (o *CheckOptions) exitFor(rep *model.Report) error {
	if rep.Failing() && !o.ExitZeroOnFailure {
		return &exitError{code: ExitFailing}
	}
	return nil
}

// output opens --output-file, or returns stdout.
func (o *CheckOptions) output() (io.Writer, func(), error) {
	if o.OutputFile == "" {
		return o.Out, func() {}, nil
	}
	f, err := os.Create(o.OutputFile)
	if err != nil {
		return nil, nil, &exitError{code: ExitUsage, err: err,
			msg: oneLine(fmt.Sprintf("cannot create --output-file %s (%v); pass a path in a writable directory", o.OutputFile, err))}
	}
	return f, func() { _ = f.Close() }, nil
}

// progressSink prints one line per finished probe, for people watching
// stderr: its counts, how long it took, and when it ended after the run
// began; and the session's own progress (the agents it starts).
func progressSink(w io.Writer) model.Sink {
	counts := map[string]*model.Summary{}
	started := map[string]time.Time{}
	var first time.Time
	var mu = make(chan struct{}, 1)
	return model.SinkFunc(func(e model.Event) {
		mu <- struct{}{}
		defer func() { <-mu }()
		switch {
		case e.Probe == "" && e.Type == model.EventProgress:
			fmt.Fprintf(w, "  %s\n", e.Message)
		case e.Type == model.EventStarted:
			counts[e.Probe], started[e.Probe] = &model.Summary{}, e.Time
			if first.IsZero() {
				first = e.Time
			}
		case e.Type == model.EventFinding:
			counts[e.Probe].Add(e.Finding.Status)
		case e.Type == model.EventFinished:
			s := counts[e.Probe]
			fmt.Fprintf(w, "  %-24s %d pass, %d warn, %d fail, %d error, %d skip  (%.1fs, done at %.1fs)\n", e.Probe,
				s.Pass, s.Warn, s.Fail, s.Error, s.Skip, e.Time.Sub(started[e.Probe]).Seconds(), e.Time.Sub(first).Seconds())
		}
	})
}
