package ui

import (
	"context"
	"log/slog"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/netsleuth/netsleuth/model"
)

// programContext is what every part of the TUI shares: the cluster, the
// theme and the terminal size.
type programContext struct {
	cluster       model.Cluster
	styles        styles
	width, height int
}

// Model is the root Bubble Tea model.
type Model struct {
	ctx      *programContext
	runID    string
	probes   []probeState
	index    map[string]int
	selected int
	spinner  spinner.Model
	events   <-chan model.Event
	cancel   context.CancelFunc
	finished bool
	quitting bool
}

// newModel returns the root model for one run whose events arrive on events;
// cancel stops the run.
func newModel(pc *programContext, runID string, infos []model.ProbeInfo, events <-chan model.Event, cancel context.CancelFunc) Model {
	m := Model{ctx: pc, runID: runID, index: map[string]int{}, events: events, cancel: cancel,
		spinner: spinner.New(spinner.WithSpinner(spinner.MiniDot))}
	for i, in := range infos {
		m.probes = append(m.probes, probeState{info: in})
		m.index[in.ID] = i
	}
	return m
}

// waitForEvent delivers the next runner event, or runFinishedMsg once the
// channel is closed.
func waitForEvent(runID string, ch <-chan model.Event) tea.Cmd {
	return func() tea.Msg {
		e, ok := <-ch
		if !ok {
			return runFinishedMsg{runID: runID}
		}
		return eventReceivedMsg{runID: runID, event: e}
	}
}

// Init starts the spinner and the event loop.
func (m Model) Init() tea.Cmd {
	return tea.Batch(m.spinner.Tick, waitForEvent(m.runID, m.events))
}

// Update handles keys, window sizes, runner events and spinner ticks.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.ctx.width, m.ctx.height = msg.Width, msg.Height
	case tea.KeyPressMsg:
		return m.handleKey(msg)
	case eventReceivedMsg:
		if msg.runID != m.runID {
			return m, nil // a stale run's event
		}
		if i, ok := m.index[msg.event.Probe]; ok {
			m.probes[i].apply(msg.event)
		}
		return m, waitForEvent(m.runID, m.events)
	case runFinishedMsg:
		if msg.runID == m.runID {
			m.finished = true
			slog.Info("run finished", "run", m.runID)
		}
	case spinner.TickMsg:
		if m.finished {
			return m, nil
		}
		var cmd tea.Cmd
		m.spinner, cmd = m.spinner.Update(msg)
		return m, cmd
	}
	return m, nil
}

func (m Model) handleKey(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	switch k.String() {
	case "up", "k":
		if m.selected > 0 {
			m.selected--
		}
	case "down", "j":
		if m.selected < len(m.probes)-1 {
			m.selected++
		}
	case "home", "g":
		m.selected = 0
	case "end", "G":
		m.selected = len(m.probes) - 1
	case "q", "ctrl+c", "esc":
		slog.Info("quit requested", "run", m.runID, "finished", m.finished)
		m.quitting = !m.finished
		m.cancel()
		return m, tea.Quit
	}
	return m, nil
}

// screen captures the model for the pure renderer.
func (m Model) screen() screen {
	return screen{
		width: m.ctx.width, height: m.ctx.height, cluster: m.ctx.cluster, runID: m.runID,
		probes: m.probes, selected: m.selected, spinner: m.spinner.View(),
		finished: m.finished, quitting: m.quitting,
	}
}

// View renders the screen in the alternate screen buffer.
func (m Model) View() tea.View {
	v := tea.NewView(render(m.screen(), m.ctx.styles))
	v.AltScreen = true
	v.WindowTitle = "netsleuth"
	return v
}
