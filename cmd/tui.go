package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"

	"k8s.io/klog/v2"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/ui"
)

// tuiExtras are probes the TUI can start on its own when the run does not
// include them: external (t asks for a target) and policy (p asks a
// question).
var tuiExtras = []string{"external", "policy"}

// RunTUI connects, then runs the probes behind the interactive TUI. Logs go
// to a file, since the TUI owns the terminal. After the TUI ends it prints
// a one-line summary and the commands the user copied.
//
// Exit codes: 0 when the user quits (whatever the findings: the TUI is for
// looking, check is for scripts), 1 when the TUI failed or the run's agents
// could not be deleted, 2 as for check.
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
	slog.Info("connected", "context", cluster.Context, "server", cluster.Server, "version", cluster.Version)
	extra := o.extras()
	res, err := ui.Run(ctx, ui.Config{
		Start: func(ctx context.Context) *probes.Session {
			return o.startSession(ctx, env, cluster, nil, extra)
		},
		Probes: infos(o.selected), Extra: infos(extra), Snapshot: env.Snap(), Cluster: cluster,
		In: o.In, Out: o.Out, ErrOut: o.ErrOut, Color: os.Getenv("NO_COLOR") == "", Invocation: o.name,
	})
	o.printCopied(res.Copied)
	if res.Report != nil {
		s := res.Report.Summary
		fmt.Fprintf(o.ErrOut, "%s: %d pass, %d warn, %d fail, %d error, %d skip; `%s check` prints the full report",
			o.name, s.Pass, s.Warn, s.Fail, s.Error, s.Skip, o.name)
		if logPath != "" {
			fmt.Fprintf(o.ErrOut, " (log: %s)", logPath)
		}
		fmt.Fprintln(o.ErrOut)
	}
	if err != nil {
		return &exitError{code: ExitFailing, msg: oneLine(fmt.Sprintf("the TUI failed (%v); run `%s check` instead", err, o.name)), err: err}
	}
	if res.CleanupErr != nil {
		return &exitError{code: ExitFailing, err: res.CleanupErr,
			msg: oneLine(fmt.Sprintf("could not delete the agents of this run (%v); run `%s cleanup`", res.CleanupErr, o.name))}
	}
	fmt.Fprintf(o.ErrOut, "%s: cleanup done: every probe's cleanup ran and the run's agents are deleted\n", o.name)
	return nil
}

// extras are the catalogue's TUI extras the selection lacks.
func (o *CheckOptions) extras() []probes.Probe {
	var out []probes.Probe
	for _, p := range o.catalogue() {
		id := p.Info().ID
		if slices.Contains(tuiExtras, id) && !slices.ContainsFunc(o.selected, func(s probes.Probe) bool { return s.Info().ID == id }) {
			out = append(out, p)
		}
	}
	return out
}

// printCopied prints again what the user copied in the TUI, in case the
// terminal did not take the OSC 52 clipboard sequence.
func (o *CheckOptions) printCopied(copied []string) {
	if len(copied) == 0 {
		return
	}
	fmt.Fprintf(o.ErrOut, "%s: the fix commands you copied (c), as they were copied:\n", o.name)
	for _, c := range copied {
		fmt.Fprintf(o.ErrOut, "%s\n\n", c)
	}
}

// slogWriter sends klog's lines to slog so they stay off the TUI.
type slogWriter struct{}

func (slogWriter) Write(p []byte) (int, error) {
	slog.Info("client-go", "msg", string(p))
	return len(p), nil
}

func infos(ps []probes.Probe) []model.ProbeInfo {
	out := make([]model.ProbeInfo, len(ps))
	for i, p := range ps {
		out[i] = p.Info()
	}
	return out
}
