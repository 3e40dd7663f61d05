package ui

import (
	"errors"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/ui/components/prompt"
	"github.com/netsleuth/netsleuth/ui/msgs"
)

// onKey routes a key: quitting first, then an open prompt, the help, and
// the bindings of the focused pane.
func (m *Model) onKey(k tea.KeyPressMsg) tea.Cmd {
	keys := m.ctx.Keys
	switch {
	case m.phase == phaseCleanupFailed:
		return tea.Quit
	case m.phase == phaseCleaning:
		if k.String() == "ctrl+c" {
			return tea.Quit // the cleanup goes on after the screen is gone
		}
		return nil
	case k.String() == "ctrl+c":
		return m.quit()
	case m.prompt.Active():
		var cmd tea.Cmd
		m.prompt, cmd = m.prompt.Update(k)
		return cmd
	case m.showHelp:
		if key.Matches(k, keys.Help, keys.Back, keys.Quit) {
			m.showHelp = false
		}
		return nil
	case m.showFlows:
		if cmd, ok := m.flowKey(k); ok {
			return cmd
		}
	}
	if cmd, ok := m.onCommandKey(k); ok {
		return cmd
	}
	if m.showFlows {
		return nil // the panes behind the flow table do not move
	}
	m.onMoveKey(k)
	m.refresh()
	return nil
}

// onCommandKey handles the keys that act rather than move.
func (m *Model) onCommandKey(k tea.KeyPressMsg) (tea.Cmd, bool) {
	keys := m.ctx.Keys
	switch {
	case key.Matches(k, keys.Quit):
		return m.quit(), true
	case key.Matches(k, keys.Help):
		m.showHelp = true
	case key.Matches(k, keys.Flows):
		return m.toggleFlows(), true
	case key.Matches(k, keys.Rerun):
		if id := m.selectedProbe(); id != "" {
			return m.rerun(id), true
		}
		m.status.Say("select a probe or a finding to re-run its probe", true, m.ctx.Now())
	case key.Matches(k, keys.RerunAll):
		ids := make([]string, 0, len(m.store.Probes))
		for _, p := range m.store.Probes {
			ids = append(ids, p.Info.ID)
		}
		return m.rerun(ids...), true
	case key.Matches(k, keys.Filter):
		return m.openPrompt(msgs.PromptFilter, prompt.Step{Label: "filter findings", Placeholder: "text in a title, ID, subject or root cause", Value: m.filter}), true
	case key.Matches(k, keys.Failing):
		m.probes.FailingOnly = !m.probes.FailingOnly
		m.tab, m.navigated = TabProbes, true
	case key.Matches(k, keys.Copy):
		return m.copyFix(), true
	case key.Matches(k, keys.NextFix), key.Matches(k, keys.PrevFix):
		d := 1
		if key.Matches(k, keys.PrevFix) {
			d = -1
		}
		m.detail.MoveFix(m.ctx.Theme, d)
	case key.Matches(k, keys.Export):
		return m.openPrompt(msgs.PromptExport, prompt.Step{Label: "export the report to", Value: "netsleuth-report-" + m.runner.ID() + ".json",
			Check: func(s string) error { _, err := exportFormat(s); return err }}), true
	case key.Matches(k, keys.Target):
		return m.targetPrompt(), true
	case key.Matches(k, keys.Policy):
		return m.policyPrompt(), true
	case key.Matches(k, keys.Log):
		m.showLog = !m.showLog
		if !m.showLog && m.focus == FocusLog {
			m.focus = FocusNav
		}
	default:
		return nil, false
	}
	m.refresh()
	return nil, true
}

// onMoveKey handles views, focus and movement.
func (m *Model) onMoveKey(k tea.KeyPressMsg) {
	keys := m.ctx.Keys
	switch {
	case key.Matches(k, keys.Back):
		m.back()
	case key.Matches(k, keys.Zoom):
		m.zoom = !m.zoom
	case key.Matches(k, keys.Open):
		m.zoom, m.focus = true, FocusDetail
	case key.Matches(k, keys.Focus), key.Matches(k, keys.FocusBack):
		m.cycleFocus(key.Matches(k, keys.FocusBack))
	case key.Matches(k, keys.RootCauses):
		m.tab, m.navigated, m.focus = TabRootCauses, true, FocusNav
	case key.Matches(k, keys.Probes):
		m.tab, m.navigated, m.focus = TabProbes, true, FocusNav
	case key.Matches(k, keys.Toggle):
		m.fold(nil)
	case m.focus == FocusNav && !m.zoom:
		m.moveNav(k)
	case m.focus == FocusLog:
		m.scroll(&m.log, k)
	default:
		m.scroll(&m.detail, k)
	}
}

func (m *Model) back() {
	switch {
	case m.zoom:
		m.zoom = false
	case m.focus != FocusNav:
		m.focus = FocusNav
	case m.filter != "":
		m.setFilter("")
	case m.probes.FailingOnly:
		m.probes.FailingOnly = false
	}
}

func (m *Model) cycleFocus(back bool) {
	order := []Focus{FocusNav, FocusDetail}
	if m.showLog {
		order = append(order, FocusLog)
	}
	i := 0
	for j, f := range order {
		if f == m.focus {
			i = j
		}
	}
	step := 1
	if back {
		step = len(order) - 1
	}
	m.focus = order[(i+step)%len(order)]
	if m.focus == FocusNav {
		m.zoom = false
	}
}

// fold folds (true), unfolds (false) or toggles (nil) the selected probe.
func (m *Model) fold(to *bool) {
	if m.tab != TabProbes {
		return
	}
	sel, ok := m.probes.Selected()
	if !ok {
		return
	}
	p := m.store.Probe(sel.Probe)
	if p == nil {
		return
	}
	want := !m.probesFolded(sel.Probe)
	if to != nil {
		want = *to
	}
	m.probes.Toggle(m.store, want, m.ctx.Now(), m.spinner.View(), m.ctx.Theme)
}

// probesFolded reports whether the probe's findings are hidden.
func (m *Model) probesFolded(id string) bool {
	for _, r := range m.probes.List.Rows() {
		if strings.HasPrefix(r.Key, "probe:"+id+"|") {
			return false
		}
	}
	return true
}

func (m *Model) moveNav(k tea.KeyPressMsg) {
	keys := m.ctx.Keys
	l := &m.probes.List
	if m.tab == TabRootCauses {
		l = &m.causes.List
	}
	page := max(1, l.Height()-1)
	yes, no := true, false
	switch {
	case key.Matches(k, keys.Up):
		l.Move(-1)
	case key.Matches(k, keys.Down):
		l.Move(1)
	case key.Matches(k, keys.PageUp), key.Matches(k, keys.HalfUp):
		l.Move(-page)
	case key.Matches(k, keys.PageDown), key.Matches(k, keys.HalfDown):
		l.Move(page)
	case key.Matches(k, keys.Top):
		l.Top()
	case key.Matches(k, keys.Bottom):
		l.Bottom()
	case key.Matches(k, keys.Left):
		m.fold(&yes)
	case key.Matches(k, keys.Right):
		m.fold(&no)
	default:
		return
	}
	m.navigated = true
}

// scroller is a pane the scroll keys move: the detail and the log.
type scroller interface {
	ScrollUp(n int)
	ScrollDown(n int)
	PageUp()
	PageDown()
	HalfUp()
	HalfDown()
	Top()
	Bottom()
	ScrollLeft()
	ScrollRight()
}

// scroll moves s by the scroll key k.
func (m *Model) scroll(s scroller, k tea.KeyPressMsg) {
	keys := m.ctx.Keys
	switch {
	case key.Matches(k, keys.Up):
		s.ScrollUp(1)
	case key.Matches(k, keys.Down):
		s.ScrollDown(1)
	case key.Matches(k, keys.PageUp):
		s.PageUp()
	case key.Matches(k, keys.PageDown):
		s.PageDown()
	case key.Matches(k, keys.HalfUp):
		s.HalfUp()
	case key.Matches(k, keys.HalfDown):
		s.HalfDown()
	case key.Matches(k, keys.Top):
		s.Top()
	case key.Matches(k, keys.Bottom):
		s.Bottom()
	case key.Matches(k, keys.Left):
		s.ScrollLeft()
	case key.Matches(k, keys.Right):
		s.ScrollRight()
	}
}

// selectedProbe is the probe of the selected row (a finding's recorder).
func (m *Model) selectedProbe() string {
	switch m.tab {
	case TabProbes:
		if sel, ok := m.probes.Selected(); ok {
			return sel.Probe
		}
	case TabRootCauses:
		if k, ok := m.causes.Selected(); ok {
			if p := m.store.ProbeOf(k); p != nil {
				return p.Info.ID
			}
		}
	}
	return ""
}

// copyFix puts the marked fix's commands (or its manifest) on the
// clipboard with OSC 52 and keeps them to print on exit.
func (m *Model) copyFix() tea.Cmd {
	now := m.ctx.Now()
	fx, n, ok := m.detail.SelectedFix()
	if !ok {
		m.status.Say("select a finding with a fix first", true, now)
		return nil
	}
	text, what := strings.Join(fx.Commands, "\n"), fmt.Sprintf("%d command(s)", len(fx.Commands))
	if text == "" {
		text, what = fx.Manifest, "its manifest"
	}
	if text == "" {
		m.status.Say(fmt.Sprintf("fix %d has no command or manifest to copy; it is advice", n), true, now)
		return nil
	}
	m.copied = append(m.copied, text)
	m.status.Say(fmt.Sprintf("copied fix %d (%s) to the clipboard; they are printed again when you quit", n, what), false, now)
	return tea.SetClipboard(text)
}

func (m *Model) openPrompt(p msgs.PromptPurpose, steps ...prompt.Step) tea.Cmd {
	var cmd tea.Cmd
	m.prompt, cmd = prompt.Open(p, m.ctx.Theme, steps...)
	m.refresh()
	return cmd
}

func (m *Model) targetPrompt() tea.Cmd {
	cur := ""
	if ts := m.runner.Options().Targets; len(ts) > 0 {
		cur = ts[0]
	}
	return m.openPrompt(msgs.PromptTarget, prompt.Step{Label: "external target", Placeholder: "IP, IP:port, CIDR or DNS name, e.g. 192.168.2.10:80", Value: cur,
		Check: func(s string) error { _, err := probes.TargetKind(s); return err }})
}

func (m *Model) policyPrompt() tea.Cmd {
	o := m.runner.Options()
	need := func(s string) error {
		if s == "" {
			return errors.New("give a value, or esc to cancel")
		}
		return nil
	}
	return m.openPrompt(msgs.PromptPolicy,
		prompt.Step{Label: "policy question: from", Placeholder: "namespace/pod or an IP", Value: o.From, Check: need},
		prompt.Step{Label: "policy question: to", Placeholder: "namespace/pod:port[/proto], or an IP or CIDR with :port", Value: o.To, Check: need})
}

// onSubmitted acts on a prompt's answer.
func (m *Model) onSubmitted(msg msgs.PromptSubmittedMsg) tea.Cmd {
	v := msg.Values
	switch msg.Purpose {
	case msgs.PromptFilter:
		m.setFilter(v[0])
	case msgs.PromptExport:
		m.status.Say("exporting to "+v[0]+"…", false, m.ctx.Now())
		return exportReport(v[0], m.store.Report)
	case msgs.PromptTarget:
		kind, _ := probes.TargetKind(v[0])
		id := "external"
		if kind == probes.TargetName {
			id = "dns"
		}
		o := m.runner.Options()
		o.Targets = []string{v[0]}
		return m.runWith(o, id)
	case msgs.PromptPolicy:
		o := m.runner.Options()
		o.From, o.To = v[0], v[1]
		return m.runWith(o, "policy")
	}
	m.refresh()
	return nil
}

// runWith reruns probe id with new inputs.
func (m *Model) runWith(o probes.Options, id string) tea.Cmd {
	if _, ok := m.infos[id]; !ok {
		m.status.Say("this build has no "+id+" probe", true, m.ctx.Now())
		return nil
	}
	m.runner.SetOptions(o)
	m.tab, m.navigated = TabProbes, true
	cmd := m.rerun(id)
	m.probes.List.Select("probe:" + id)
	m.refresh()
	return cmd
}

// onWheel scrolls the pane under the pointer.
func (m *Model) onWheel(msg tea.MouseWheelMsg) {
	l := m.layout()
	mouse := msg.Mouse()
	delta := 3
	if mouse.Button == tea.MouseWheelUp {
		delta = -3
	}
	switch l.at(mouse.X, mouse.Y) {
	case FocusNav:
		if m.tab == TabRootCauses {
			m.causes.List.Scroll(delta)
		} else {
			m.probes.List.Scroll(delta)
		}
	case FocusLog:
		m.log, _ = m.log.Update(msg)
	default:
		m.detail, _ = m.detail.Update(msg)
	}
	m.refresh()
}

// onClick selects the clicked row of the navigation pane.
func (m *Model) onClick(msg tea.MouseClickMsg) {
	l := m.layout()
	mouse := msg.Mouse()
	if l.at(mouse.X, mouse.Y) != FocusNav {
		return
	}
	list := &m.probes.List
	if m.tab == TabRootCauses {
		list = &m.causes.List
	}
	if k, ok := list.RowAt(mouse.Y - l.navTop); ok {
		list.Select(k)
		m.focus, m.navigated = FocusNav, true
	}
	m.refresh()
}
