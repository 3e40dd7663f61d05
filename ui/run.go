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
	pkube "github.com/netsleuth/netsleuth/probes/kube"
)

// Config is one TUI session.
type Config struct {
	// Start starts the session's first run: the same start as check's
	// (cmd's startSession), with the probes t and p may add as extras.
	Start func(ctx context.Context) *probes.Session
	// Probes are the first run's probes and Extra the ones a rerun may add,
	// as Start was given them (the list shows them).
	Probes, Extra []model.ProbeInfo
	// Snapshot is the first run's read of the cluster; the header's
	// discovery reads through it. Nil leaves nodes, CNI and mode unknown.
	Snapshot *pkube.Snapshot
	Cluster  model.Cluster
	In       io.Reader
	Out      io.Writer
	// ErrOut gets a note when quitting has to wait for the cleanup.
	ErrOut io.Writer
	// Color enables colours; false when NO_COLOR is set.
	Color bool
	// Invocation is how the user runs netsleuth.
	Invocation string
	// Program adds options to the Bubble Tea program (tests).
	Program []tea.ProgramOption
}

// Result is what the session left.
type Result struct {
	// Report is the latest run of every probe.
	Report *model.Report
	// Copied are the commands the user copied with c, to print again.
	Copied []string
	// CleanupErr says the agents could not be deleted.
	CleanupErr error
}

// Run starts the probes in a session and shows the TUI until the user
// quits; the session is closed (probes stopped, cleanups run, agents
// deleted) before Run returns, however the TUI ended.
func Run(ctx context.Context, cfg Config) (Result, error) {
	sess := cfg.Start(ctx)
	o := Options{Cluster: cfg.Cluster, Color: cfg.Color, Dark: true, Invocation: cfg.Invocation, Probes: cfg.Probes, Extra: cfg.Extra}
	if cfg.Snapshot != nil {
		o.Discover = DiscoverCluster(cfg.Snapshot)
	}
	m := New(sess, o)
	m.interrupt = waitForInterrupt(ctx)
	opts := append([]tea.ProgramOption{tea.WithInput(cfg.In), tea.WithOutput(cfg.Out), tea.WithoutSignalHandler()}, cfg.Program...)
	p := tea.NewProgram(m, opts...)
	slog.Info("TUI started", "session", sess.ID(), "probes", len(cfg.Probes))
	_, err := p.Run()
	res := Result{Copied: m.Copied(), CleanupErr: closeNoting(sess, cfg.ErrOut)}
	res.Report = sess.Report()
	slog.Info("session ended", "session", sess.ID(), "cleanupErr", res.CleanupErr)
	if err != nil && ctx.Err() == nil {
		return res, fmt.Errorf("run the TUI: %w", err)
	}
	return res, nil
}

// closeNoting closes the session; when that takes a moment (the TUI was
// left before its cleanup ended), it says so on w.
func closeNoting(s *probes.Session, w io.Writer) error {
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(200 * time.Millisecond):
	}
	if w != nil {
		fmt.Fprintln(w, "netsleuth: cleaning up: stopping the probes and deleting what they created…")
	}
	return <-done
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
