package ui

import (
	"context"
	"fmt"
	"io"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/netsleuth/netsleuth/ui/components/flowtable"
	"github.com/netsleuth/netsleuth/ui/keys"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// LiveCapture is `netsleuth capture` on a terminal: the flow table of a
// capture that is still running, read again every second, until the
// capture ends or the user stops it.
type LiveCapture struct {
	// Title says what is captured ("node n1, pod veth veth1").
	Title string
	// Rows decodes what was captured so far (called in a command, off the
	// event loop).
	Rows func() []flowtable.Row
	// Done closes when the capture ends; Stop asks it to end (q, ctrl+c).
	Done <-chan struct{}
	Stop func()
	In   io.Reader
	Out  io.Writer
}

// rowsReadMsg carries a snapshot of the capture's flows.
type rowsReadMsg struct{ rows []flowtable.Row }

// captureEndedMsg says the capture ended.
type captureEndedMsg struct{}

type liveModel struct {
	cfg     LiveCapture
	tab     flowtable.Model
	km      *keys.KeyMap
	th      *theme.Theme
	w, h    int
	started time.Time
	now     func() time.Time
	stopped bool
}

func newLiveModel(cfg LiveCapture, now func() time.Time) *liveModel {
	return &liveModel{cfg: cfg, tab: flowtable.New(), km: keys.Default(), th: theme.New(false, true), now: now, started: now()}
}

func (m *liveModel) readRows() tea.Cmd {
	rows := m.cfg.Rows
	return func() tea.Msg { return rowsReadMsg{rows: rows()} }
}

func (m *liveModel) Init() tea.Cmd {
	done := m.cfg.Done
	return tea.Batch(m.readRows(), func() tea.Msg { <-done; return captureEndedMsg{} })
}

func (m *liveModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
		m.tab.SetSize(m.w, max(1, m.h-1))
	case rowsReadMsg:
		m.tab.SetRows(msg.rows)
		return m, tea.Tick(time.Second, func(time.Time) tea.Msg { return tickedMsg{} })
	case tickedMsg:
		return m, m.readRows()
	case captureEndedMsg:
		return m, tea.Quit
	case flowtable.PacketsListedMsg:
		m.tab, _, _ = m.tab.Update(msg, m.km)
	case tea.KeyPressMsg:
		var cmd tea.Cmd
		var ok bool
		if m.tab, cmd, ok = m.tab.Update(msg, m.km); ok {
			return m, cmd
		}
		if key.Matches(msg, m.km.Quit) && !m.stopped {
			m.stopped = true
			m.cfg.Stop() // the capture ends, then captureEndedMsg quits
		}
	}
	return m, nil
}

// tickedMsg asks for the next snapshot.
type tickedMsg struct{}

func (m *liveModel) View() tea.View {
	state := fmt.Sprintf("capturing %s for %s · q stops", m.cfg.Title, m.now().Sub(m.started).Round(time.Second))
	if m.stopped {
		state = fmt.Sprintf("stopping the capture on %s…", m.cfg.Title)
	}
	v := tea.NewView(m.th.Render(m.th.Label, state) + "\n" + m.tab.View(m.th))
	v.AltScreen = true
	return v
}

// RunLiveCapture shows the live flow table until the capture ends.
func RunLiveCapture(ctx context.Context, cfg LiveCapture) error {
	p := tea.NewProgram(newLiveModel(cfg, time.Now), tea.WithContext(ctx), tea.WithInput(cfg.In), tea.WithOutput(cfg.Out), tea.WithoutSignalHandler())
	_, err := p.Run()
	return err
}
