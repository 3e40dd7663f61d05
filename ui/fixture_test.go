package ui

import (
	"slices"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/ui/components/flowtable"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
	"github.com/netsleuth/netsleuth/ui/msgs"
)

var t0 = uitest.T0

// fakeRunner is a session whose events the test sends.
type fakeRunner struct {
	mu       sync.Mutex
	id       string
	events   chan model.Event
	reruns   [][]string
	opts     probes.Options
	closed   int
	closeErr error
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{id: "c0ffee12", events: make(chan model.Event, 1024)}
}

func (f *fakeRunner) ID() string                 { return f.id }
func (f *fakeRunner) Events() <-chan model.Event { return f.events }
func (f *fakeRunner) Options() probes.Options    { f.mu.Lock(); defer f.mu.Unlock(); return f.opts }
func (f *fakeRunner) SetOptions(o probes.Options) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts = o
}
func (f *fakeRunner) Close() error { f.mu.Lock(); defer f.mu.Unlock(); f.closed++; return f.closeErr }
func (f *fakeRunner) Rerun(ids ...string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reruns = append(f.reruns, slices.Clone(ids))
	return "rerun" + string(rune('0'+len(f.reruns))), nil
}

// session is a model on a fake runner with a fixed clock.
type session struct {
	t   testing.TB
	m   *Model
	r   *fakeRunner
	now time.Time
}

func newSession(t testing.TB, w, h int, first, extra []model.ProbeInfo) *session {
	s := &session{t: t, r: newFakeRunner(), now: t0}
	s.m = New(s.r, Options{Cluster: uitest.Lab, Probes: first, Extra: extra, Now: func() time.Time { return s.now }})
	s.send(tea.WindowSizeMsg{Width: w, Height: h})
	return s
}

// send delivers msg to Update and returns the command it gave.
func (s *session) send(msg tea.Msg) tea.Cmd {
	s.t.Helper()
	_, cmd := s.m.Update(msg)
	return cmd
}

// event delivers one event of run runID at the session's clock.
func (s *session) event(runID, probe string, typ model.EventType, f *model.Finding, msg string) {
	s.send(eventReceivedMsg{runID: runID, event: model.Event{RunID: runID, Probe: probe, Type: typ, Time: s.now, Finding: f, Message: msg}})
}

// run plays a whole run of probe: started, its findings, finished, the
// clock moving by d.
func (s *session) run(runID, probe string, fs []model.Finding, d time.Duration) {
	s.event(runID, probe, model.EventStarted, nil, "")
	for _, f := range fs {
		if f.Probe == probe {
			s.event(runID, probe, model.EventFinding, &f, "")
		}
	}
	s.now = s.now.Add(d)
	s.event(runID, probe, model.EventFinished, nil, "")
}

// playAll runs every probe of the session with the findings given.
func (s *session) playAll(fs []model.Finding) {
	for i, p := range s.m.store.Probes {
		s.run(s.r.id, p.Info.ID, fs, time.Duration(300+100*i)*time.Millisecond)
	}
}

// key sends a key press; text keys are given as their text.
func (s *session) key(k string) tea.Cmd {
	s.t.Helper()
	return s.send(keyPress(k))
}

func keyPress(k string) tea.KeyPressMsg {
	codes := map[string]rune{"enter": tea.KeyEnter, "esc": tea.KeyEscape, "tab": tea.KeyTab, "up": tea.KeyUp, "down": tea.KeyDown,
		"left": tea.KeyLeft, "right": tea.KeyRight, "space": tea.KeySpace, "pgdown": tea.KeyPgDown, "pgup": tea.KeyPgUp, "backspace": tea.KeyBackspace}
	if c, ok := codes[k]; ok {
		return tea.KeyPressMsg{Code: c}
	}
	if k == "ctrl+c" {
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	}
	r := []rune(k)
	return tea.KeyPressMsg{Code: r[0], Text: k}
}

// typeText types s into whatever has the keyboard.
func (s *session) typeText(text string) {
	for _, r := range text {
		s.send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

// screen is the rendered screen.
func (s *session) screen() string { return s.m.render() }

// feedWait is how long feed lets one command run. Commands that wait for
// events or ticks never answer in time and are dropped; commands that read
// files (a capture's pcap) must answer within it even on a loaded machine.
const feedWait = time.Second

// feed runs cmd (and the commands of a batch) for at most feedWait each
// and delivers the messages a test cares about back to Update.
func (s *session) feed(cmd tea.Cmd) {
	s.t.Helper()
	if cmd == nil {
		return
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-ch:
	case <-time.After(feedWait):
		return // a tick, a blink or a wait for events
	}
	switch msg := msg.(type) {
	case tea.BatchMsg:
		for _, c := range msg {
			s.feed(c)
		}
	case msgs.PromptSubmittedMsg, msgs.PromptChangedMsg, msgs.PromptCancelledMsg, reportExportedMsg, sessionClosedMsg,
		flowsLoadedMsg, flowtable.PacketsListedMsg:
		s.feed(s.send(msg))
	}
}
