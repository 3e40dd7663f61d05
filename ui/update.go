package ui

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/components/detail"
	"github.com/netsleuth/netsleuth/ui/components/flowtable"
	"github.com/netsleuth/netsleuth/ui/msgs"
	"github.com/netsleuth/netsleuth/ui/state"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// Update handles one message. It never blocks: what needs I/O goes out as
// a command.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.ctx.Width, m.ctx.Height = msg.Width, msg.Height
		m.refresh()
	case tea.BackgroundColorMsg:
		m.ctx.Theme = theme.New(m.color, msg.IsDark())
		m.refresh()
	case eventReceivedMsg:
		return m, m.onEvent(msg)
	case eventsClosedMsg:
		m.eventsEnd = true
	case flowsLoadedMsg:
		m.onFlowsLoaded(msg)
	case flowtable.PacketsListedMsg:
		m.flowTab, _, _ = m.flowTab.Update(msg, m.ctx.Keys)
	case clusterDiscoveredMsg:
		m.header.SetFacts(msg.facts)
		if msg.facts.Err == nil {
			m.store.Cluster.CNI = msg.facts.CNI // an exported report names it too
		}
	case spinner.TickMsg:
		return m, m.onSpin(msg)
	case secondTickedMsg:
		m.refresh()
		return m, tickEvery()
	case reportExportedMsg:
		m.onExported(msg)
	case sessionClosedMsg:
		return m, m.onClosed(msg)
	case interruptedMsg, tea.InterruptMsg:
		return m, m.quit()
	case msgs.PromptSubmittedMsg:
		return m, m.onSubmitted(msg)
	case msgs.PromptChangedMsg:
		m.setFilter(msg.Value)
	case msgs.PromptCancelledMsg:
		if msg.Purpose == msgs.PromptFilter {
			m.setFilter("")
		}
		m.refresh()
	case tea.KeyPressMsg:
		return m, m.onKey(msg)
	case tea.MouseWheelMsg:
		m.onWheel(msg)
	case tea.MouseClickMsg:
		m.onClick(msg)
	default:
		if m.prompt.Active() {
			var cmd tea.Cmd
			m.prompt, cmd = m.prompt.Update(msg)
			return m, cmd
		}
	}
	return m, nil
}

// onEvent applies a runner event; an event of a superseded run is dropped.
func (m *Model) onEvent(msg eventReceivedMsg) tea.Cmd {
	next := waitForEvent(m.runner.Events())
	if !m.store.Apply(msg.event) {
		slog.Debug("stale event dropped", "run", msg.runID, "probe", msg.event.Probe, "type", msg.event.Type)
		return next
	}
	if msg.event.Type == model.EventFinished {
		slog.Info("probe finished", "run", msg.runID, "probe", msg.event.Probe)
	}
	if !m.navigated && m.tab == TabProbes && len(m.store.RootCauses) > 0 {
		m.tab = TabRootCauses
		m.refresh()
		m.causes.List.Top()
	}
	m.refresh()
	return tea.Batch(next, m.syncFlows())
}

// onSpin advances the spinner while something runs or cleans up.
func (m *Model) onSpin(msg spinner.TickMsg) tea.Cmd {
	_, running, _ := m.store.Counts()
	if running == 0 && m.phase != phaseCleaning {
		return nil
	}
	var cmd tea.Cmd
	m.spinner, cmd = m.spinner.Update(msg)
	m.refresh()
	return cmd
}

func (m *Model) onExported(msg reportExportedMsg) {
	now := m.ctx.Now()
	if msg.err != nil {
		m.status.Say("export failed: "+oneLine(msg.err.Error()), true, now)
		return
	}
	m.status.Say(fmt.Sprintf("exported %d findings as %s to %s", msg.findings, msg.format, msg.path), false, now)
}

func (m *Model) onClosed(msg sessionClosedMsg) tea.Cmd {
	if msg.err == nil {
		slog.Info("cleaned up", "session", m.runner.ID())
		return tea.Quit
	}
	slog.Error("cleanup failed", "session", m.runner.ID(), "err", msg.err)
	m.closeErr, m.phase = msg.err, phaseCleanupFailed
	return nil
}

// quit starts the cleanup: the screen says so until it is done.
func (m *Model) quit() tea.Cmd {
	if m.phase != phaseRunning {
		return nil
	}
	slog.Info("quit requested", "session", m.runner.ID())
	m.phase = phaseCleaning
	m.prompt.Close()
	return tea.Batch(closeSession(m.runner), m.spinner.Tick)
}

// rerun starts ids again as a new run and resets their rows.
func (m *Model) rerun(ids ...string) tea.Cmd {
	runID, err := m.runner.Rerun(ids...)
	now := m.ctx.Now()
	if err != nil {
		m.status.Say("cannot re-run: "+err.Error(), true, now)
		return nil
	}
	infos := make([]model.ProbeInfo, 0, len(ids))
	for _, id := range ids {
		infos = append(infos, m.infos[id])
	}
	m.store.Restart(runID, infos, now)
	m.status.Say(fmt.Sprintf("re-running %s (run %s)", strings.Join(ids, ", "), runID), false, now)
	slog.Info("rerun", "run", runID, "probes", ids)
	m.refresh()
	return m.spinner.Tick
}

// refresh brings every pane up to date with the store and the size.
func (m *Model) refresh() {
	l := m.layout()
	th, now := m.ctx.Theme, m.ctx.Now()
	m.probes.Rebuild(m.store, now, m.spinner.View(), th)
	m.causes.Rebuild(m.store, th, m.filter)
	m.probes.List.SetHeight(l.navH)
	m.causes.List.SetHeight(l.navH)
	m.detail.SetSize(l.detW, l.detH)
	m.detail.SetItem(th, m.selectedItem(now))
	m.log.SetSize(m.ctx.Width, l.logH)
	m.log.Sync(m.store.Log, th)
	m.flowTab.SetSize(l.w, l.bodyH-1)
	m.help.ShowAll = true
	m.help.SetWidth(m.ctx.Width)
	if th.Color {
		m.help.Styles = th.Help
	} else {
		m.help.Styles = help.Styles{}
	}
}

// selectedItem is what the detail pane must show for the selection.
func (m *Model) selectedItem(now time.Time) detail.Item {
	it := detail.Item{Report: m.store.Report, Now: now, Spinner: m.spinner.View()}
	key := ""
	switch m.tab {
	case TabRootCauses:
		k, ok := m.causes.Selected()
		if !ok {
			return it
		}
		key = k
	case TabProbes:
		sel, ok := m.probes.Selected()
		if !ok {
			return it
		}
		if sel.Finding == "" {
			p := m.store.Probe(sel.Probe)
			it.Key, it.Probe = "probe:"+sel.Probe, p
			it.Version = fmt.Sprintf("%d", p.Version)
			if p.Phase == state.Running {
				it.Version += fmt.Sprintf("/%d/%s", p.Duration(now).Milliseconds()/100, it.Spinner)
			}
			return it
		}
		key = sel.Finding
	}
	f, ok := m.store.Finding(key)
	if !ok {
		return it
	}
	it.Key, it.Finding, it.Probe = "finding:"+key, &f, m.store.Probe(f.Probe)
	it.Version = fingerprint(f, len(m.store.Report.Symptoms(key)))
	return it
}

// fingerprint changes when what a finding shows changes.
func fingerprint(f model.Finding, symptoms int) string {
	return fmt.Sprintf("%s|%s|%d|%d|%s|%d", f.Status, f.Title, len(f.Evidence), len(f.Fixes), f.CausedBy, symptoms)
}

func (m *Model) setFilter(v string) {
	m.filter = v
	m.probes.Filter = v
	m.refresh()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
