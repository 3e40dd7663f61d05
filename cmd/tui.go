package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"k8s.io/klog/v2"

	"github.com/netsleuth/netsleuth/ui"
)

// RunTUI connects, then runs the probes behind the interactive TUI. Logs go to
// a file, since the TUI owns the terminal. After the TUI ends it prints a
// one-line summary, and the exit code follows the same rules as check.
func (o *CheckOptions) RunTUI(ctx context.Context) error {
	logPath, closeLog, err := ui.OpenLog()
	if err == nil {
		defer closeLog()
		klog.LogToStderr(false)
		klog.SetOutput(slogWriter{})
	}
	env, cluster, err := o.prepare(ctx)
	if err != nil {
		return err
	}
	defer o.closeAgents(env)
	slog.Info("connected", "context", cluster.Context, "server", cluster.Server, "version", cluster.Version)
	rep, err := ui.Run(ctx, ui.Config{
		Probes: o.selected, Env: env, Runner: o.runnerOptions(), Cluster: cluster,
		In: o.In, Out: o.Out, ErrOut: o.ErrOut, Color: os.Getenv("NO_COLOR") == "",
	})
	if err != nil {
		return &exitError{code: ExitFailing, msg: oneLine(fmt.Sprintf("the TUI failed (%v); run `%s check` instead", err, o.name)), err: err}
	}
	s := rep.Summary
	fmt.Fprintf(o.ErrOut, "%s: %d pass, %d warn, %d fail, %d error, %d skip; `%s check` prints the full report",
		o.name, s.Pass, s.Warn, s.Fail, s.Error, s.Skip, o.name)
	if logPath != "" {
		fmt.Fprintf(o.ErrOut, " (log: %s)", logPath)
	}
	fmt.Fprintln(o.ErrOut)
	return o.exitFor(rep)
}

// slogWriter sends klog's lines to slog so they stay off the TUI.
type slogWriter struct{}

func (slogWriter) Write(p []byte) (int, error) {
	slog.Info("client-go", "msg", string(p))
	return len(p), nil
}
