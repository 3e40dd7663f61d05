package ui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
)

// Config is one TUI run.
type Config struct {
	Probes  []probes.Probe
	Env     *probes.Env
	Runner  probes.RunnerOptions
	Cluster model.Cluster
	In      io.Reader
	Out     io.Writer
	// ErrOut gets a note when quitting has to wait for cleanups.
	ErrOut io.Writer
	// Color enables colours; false when NO_COLOR is set.
	Color bool
}

// Run shows the TUI while the probes run in a goroutine that feeds it events.
// Quitting cancels the run; Run returns only after every cleanup has run, with
// the report of everything the probes recorded.
func Run(ctx context.Context, cfg Config) (*model.Report, error) {
	if cfg.Env.RunID == "" {
		cfg.Env.RunID = probes.NewRunID()
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	infos := make([]model.ProbeInfo, len(cfg.Probes))
	ids := make([]string, len(cfg.Probes))
	for i, p := range cfg.Probes {
		infos[i] = p.Info()
		ids[i] = infos[i].ID
	}
	col := probes.NewCollector(cfg.Cluster, time.Now(), ids...)
	events := make(chan model.Event, 64)
	uiGone := make(chan struct{})
	forward := model.SinkFunc(func(e model.Event) {
		select {
		case events <- e:
		case <-uiGone: // nobody is reading any more; the collector still gets it
		}
	})
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		defer close(events)
		probes.Run(runCtx, cfg.Probes, cfg.Env, probes.Tee(col, forward), cfg.Runner)
	}()
	pc := &programContext{cluster: cfg.Cluster, styles: newStyles(cfg.Color), width: 100, height: 30}
	quit := func() { cancel(fmt.Errorf("the user quit the TUI: %w", context.Canceled)) }
	m := newModel(pc, cfg.Env.RunID, infos, events, quit)
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(cfg.In), tea.WithOutput(cfg.Out))
	slog.Info("TUI started", "run", cfg.Env.RunID, "probes", ids)
	_, err := p.Run()
	close(uiGone)
	cancel(fmt.Errorf("the TUI ended: %w", context.Canceled))
	select {
	case <-runDone:
	default:
		if cfg.ErrOut != nil {
			fmt.Fprintln(cfg.ErrOut, "netsleuth: stopping the probes and cleaning up what they created…")
		}
		<-runDone
	}
	slog.Info("run ended", "run", cfg.Env.RunID)
	if err != nil && ctx.Err() == nil {
		return col.Report(time.Now()), fmt.Errorf("run the TUI: %w", err)
	}
	return col.Report(time.Now()), nil
}

// OpenLog points log/slog at netsleuth.log in the user's cache directory and
// returns a function that closes it. The TUI owns the terminal, so logs must
// not go to stderr.
func OpenLog() (path string, closeLog func(), err error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", nil, fmt.Errorf("find the cache directory: %w", err)
	}
	dir = filepath.Join(dir, "netsleuth")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("create the log directory: %w", err)
	}
	path = filepath.Join(dir, "netsleuth.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("open the log file: %w", err)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return path, func() { _ = f.Close() }, nil
}
