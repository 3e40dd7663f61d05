package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/netsleuth/netsleuth/model"
	pkube "github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/report"
	"github.com/netsleuth/netsleuth/ui/components/header"
)

// Messages of the root model: nouns with a past-tense verb; runner events
// carry their run ID.

// eventReceivedMsg carries one runner event.
type eventReceivedMsg struct {
	runID string
	event model.Event
}

// eventsClosedMsg says the session closed its event stream.
type eventsClosedMsg struct{}

// clusterDiscoveredMsg carries the header's cluster facts.
type clusterDiscoveredMsg struct{ facts header.Facts }

// reportExportedMsg says the report was written (or why not).
type reportExportedMsg struct {
	path, format string
	findings     int
	err          error
}

// sessionClosedMsg says the session's cleanup ended.
type sessionClosedMsg struct{ err error }

// secondTickedMsg drives the elapsed time and the status bar's messages.
type secondTickedMsg struct{ at time.Time }

// interruptedMsg says the process got SIGINT or SIGTERM.
type interruptedMsg struct{}

// waitForEvent delivers the next runner event, or eventsClosedMsg once the
// stream ends; Update re-arms it after each event.
func waitForEvent(ch <-chan model.Event) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		e, ok := <-ch
		if !ok {
			return eventsClosedMsg{}
		}
		return eventReceivedMsg{runID: e.RunID, event: e}
	}
}

func tickEvery() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return secondTickedMsg{at: t} })
}

// waitForInterrupt turns the end of ctx (a signal) into interruptedMsg.
func waitForInterrupt(ctx context.Context) tea.Cmd {
	return func() tea.Msg {
		<-ctx.Done()
		return interruptedMsg{}
	}
}

// closeSession stops the runs and cleans up, off the event loop.
func closeSession(r Runner) tea.Cmd {
	return func() tea.Msg { return sessionClosedMsg{err: r.Close()} }
}

// DiscoverCluster returns the command that reads, after the first frame,
// what the header shows about the cluster: the node count, the CNI and its
// version (kube.DiscoverCNI) and kube-proxy's mode. It reads
// through the first run's snapshot, so the probes reuse what it read.
func DiscoverCluster(snap *pkube.Snapshot) func() tea.Cmd {
	return func() tea.Cmd {
		return func() tea.Msg {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return clusterDiscoveredMsg{facts: discover(ctx, snap)}
		}
	}
}

func discover(ctx context.Context, snap *pkube.Snapshot) header.Facts {
	nodes, err := snap.Nodes(ctx)
	if err != nil {
		return header.Facts{Err: fmt.Errorf("listing nodes: %w", err)}
	}
	f := header.Facts{Nodes: len(nodes), CNI: pkube.DiscoverCNI(ctx, snap).String()}
	f.ProxyMode = pkube.DiscoverKubeProxy(ctx, snap).Mode
	return f
}

// exportFormat is the report format a file name asks for.
func exportFormat(path string) (report.Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return report.JSON, nil
	case ".yaml", ".yml":
		return report.YAML, nil
	case ".xml", ".junit":
		return report.JUnit, nil
	case ".txt", ".text":
		return report.Text, nil
	}
	return "", fmt.Errorf("%q: name the file .json, .yaml, .xml (JUnit) or .txt", path)
}

// exportReport writes r to path in the format its name asks for.
func exportReport(path string, r *model.Report) tea.Cmd {
	return func() tea.Msg {
		format, err := exportFormat(path)
		if err != nil {
			return reportExportedMsg{path: path, err: err}
		}
		abs, _ := filepath.Abs(path)
		f, err := os.Create(path)
		if err != nil {
			return reportExportedMsg{path: abs, err: err}
		}
		err = report.Write(f, format, r, report.Options{})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return reportExportedMsg{path: abs, format: string(format), findings: len(r.Findings), err: err}
	}
}
