// Package ui is netsleuth's Bubble Tea TUI. The root Model here is the only
// tea.Model: it owns the session's state (package state), lays out the
// panes (packages under components/, each with its own model or pure
// renderer) and turns keys into commands; every API call, rerun and file
// write runs in a tea.Cmd.
package ui

import (
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/ui/common"
	"github.com/netsleuth/netsleuth/ui/components/detail"
	"github.com/netsleuth/netsleuth/ui/components/flowtable"
	"github.com/netsleuth/netsleuth/ui/components/header"
	"github.com/netsleuth/netsleuth/ui/components/logpane"
	"github.com/netsleuth/netsleuth/ui/components/probelist"
	"github.com/netsleuth/netsleuth/ui/components/prompt"
	"github.com/netsleuth/netsleuth/ui/components/rootcauses"
	"github.com/netsleuth/netsleuth/ui/components/statusbar"
	"github.com/netsleuth/netsleuth/ui/state"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// Runner is what the TUI needs of a probes.Session; tests fake it.
type Runner interface {
	ID() string
	Events() <-chan model.Event
	Rerun(ids ...string) (string, error)
	Options() probes.Options
	SetOptions(probes.Options)
	Close() error
}

// Tab is the navigation pane's view.
type Tab int

// The views.
const (
	TabRootCauses Tab = iota
	TabProbes
)

// Focus is the pane keys go to.
type Focus int

// The panes.
const (
	FocusNav Focus = iota
	FocusDetail
	FocusLog
)

// phase is where the program is.
type phase int

const (
	phaseRunning phase = iota
	phaseCleaning
	phaseCleanupFailed
)

// Model is the root model.
type Model struct {
	ctx      *common.Context
	runner   Runner
	store    *state.Store
	infos    map[string]model.ProbeInfo // every probe a rerun may start
	color    bool                       // false: NO_COLOR or tests
	discover func() tea.Cmd
	// interrupt ends the TUI through the cleanup when the process gets a
	// signal (Run sets it).
	interrupt tea.Cmd

	header  header.Model
	probes  probelist.Model
	causes  rootcauses.Model
	detail  detail.Model
	log     logpane.Model
	status  statusbar.Model
	prompt  prompt.Model
	spinner spinner.Model
	help    help.Model
	flowTab flowtable.Model

	tab       Tab
	focus     Focus
	zoom      bool
	showHelp  bool
	showLog   bool
	showFlows bool
	flowsKey  string // the captures the flow table was loaded from
	navigated bool   // the user moved: do not switch views under them
	filter    string
	phase     phase
	closeErr  error
	copied    []string
	eventsEnd bool
	lastFrame time.Time
}

// Options configure a Model.
type Options struct {
	Cluster model.Cluster
	// Probes are the probes of the first run, Extra those a rerun may add
	// (external for `t`, policy for `p`).
	Probes, Extra []model.ProbeInfo
	Color         bool
	Dark          bool
	Invocation    string
	// Discover returns the command that detects nodes, CNI and kube-proxy
	// mode; nil leaves them unknown.
	Discover func() tea.Cmd
	Now      func() time.Time
}

// New returns the root model for runner's session.
func New(runner Runner, o Options) *Model {
	c := common.New(theme.New(o.Color, o.Dark), o.Cluster)
	if o.Invocation != "" {
		c.Invocation = o.Invocation
	}
	if o.Now != nil {
		c.Now = o.Now
	}
	m := &Model{ctx: c, runner: runner, color: o.Color, discover: o.Discover, infos: map[string]model.ProbeInfo{},
		store: state.New(o.Cluster, c.Now(), runner.ID(), o.Probes), probes: probelist.New(),
		detail: detail.New(), log: logpane.New(), status: statusbar.New(), help: help.New(),
		spinner: spinner.New(spinner.WithSpinner(spinner.MiniDot)), tab: TabProbes}
	for _, in := range append(append([]model.ProbeInfo{}, o.Probes...), o.Extra...) {
		m.infos[in.ID] = in
	}
	m.refresh()
	return m
}

// Init starts the spinner, the event loop and, after the first frame, the
// cluster discovery; it asks the terminal for its background colour.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.spinner.Tick, waitForEvent(m.runner.Events()), tickEvery()}
	if m.color {
		cmds = append(cmds, tea.RequestBackgroundColor)
	}
	if m.discover != nil {
		cmds = append(cmds, m.discover())
	}
	if m.interrupt != nil {
		cmds = append(cmds, m.interrupt)
	}
	return tea.Batch(cmds...)
}

// Copied are the commands the user copied, to print again on exit.
func (m *Model) Copied() []string { return m.copied }

// CloseErr is the cleanup's error, if it failed.
func (m *Model) CloseErr() error { return m.closeErr }

// Report is the report of what the session shows.
func (m *Model) Report() *model.Report { return m.store.Report }
