// Package keys is the TUI's one keymap: every pane matches its keys here,
// and the help pane and status bar show them from here.
package keys

import "charm.land/bubbles/v2/key"

// KeyMap holds every binding of the TUI.
type KeyMap struct {
	Up, Down, Left, Right    key.Binding
	PageUp, PageDown         key.Binding
	HalfUp, HalfDown         key.Binding
	Top, Bottom              key.Binding
	Open, Back, Zoom, Toggle key.Binding
	Focus, FocusBack         key.Binding
	RootCauses, Probes       key.Binding
	Rerun, RerunAll          key.Binding
	Filter, Failing          key.Binding
	Copy, NextFix, PrevFix   key.Binding
	Export, Target, Policy   key.Binding
	Log, Help, Quit          key.Binding
	Flows, Sort, Reverse     key.Binding
}

// Default is the keymap: arrows and vim keys to move.
func Default() *KeyMap {
	b := func(help, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return &KeyMap{
		Up:         b("↑/k", "up", "up", "k"),
		Down:       b("↓/j", "down", "down", "j"),
		Left:       b("←", "scroll left / fold", "left"),
		Right:      b("→", "scroll right / unfold", "right"),
		PageUp:     b("pgup", "page up", "pgup"),
		PageDown:   b("pgdn", "page down", "pgdown"),
		HalfUp:     b("ctrl+u", "half page up", "ctrl+u"),
		HalfDown:   b("ctrl+d", "half page down", "ctrl+d"),
		Top:        b("g/home", "top", "g", "home"),
		Bottom:     b("G/end", "bottom", "G", "end"),
		Open:       b("enter", "open", "enter"),
		Back:       b("esc", "back", "esc"),
		Zoom:       b("z", "full screen", "z"),
		Toggle:     b("space", "fold/unfold probe", "space"),
		Focus:      b("tab", "next pane", "tab"),
		FocusBack:  b("shift+tab", "previous pane", "shift+tab"),
		RootCauses: b("1", "root causes", "1"),
		Probes:     b("2", "probes", "2"),
		Rerun:      b("r", "re-run probe", "r"),
		RerunAll:   b("R", "re-run all", "R"),
		Filter:     b("/", "filter findings", "/"),
		Failing:    b("f", "only failing", "f"),
		Copy:       b("c", "copy fix", "c"),
		NextFix:    b("]", "next fix", "]"),
		PrevFix:    b("[", "previous fix", "["),
		Export:     b("e", "export report", "e"),
		Target:     b("t", "external target", "t"),
		Policy:     b("p", "policy question", "p"),
		Log:        b("l", "event log", "l"),
		Help:       b("?", "help", "?"),
		Quit:       b("q", "quit", "q", "ctrl+c"),
		Flows:      b("F", "flow table", "F"),
		Sort:       b("s", "sort flows by next column", "s"),
		Reverse:    b("S", "reverse flow sort", "S"),
	}
}

// ShortHelp is what the status bar shows, in a few words each, the most
// useful first; the last ShortPinned (help and quit) are never dropped.
func (k *KeyMap) ShortHelp() []key.Binding {
	short := func(b key.Binding, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(b.Keys()...), key.WithHelp(b.Help().Key, desc))
	}
	return []key.Binding{short(k.Open, "open"), short(k.Copy, "copy fix"), short(k.Rerun, "re-run"), short(k.Focus, "pane"),
		short(k.Filter, "filter"), short(k.Failing, "failing"), short(k.Help, "help"), short(k.Quit, "quit")}
}

// ShortPinned is how many of ShortHelp's last bindings always show.
const ShortPinned = 2

// FullHelp is the help pane, in columns.
func (k *KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.Left, k.Right, k.PageUp, k.PageDown, k.HalfUp, k.HalfDown, k.Top, k.Bottom},
		{k.Open, k.Back, k.Zoom, k.Toggle, k.Focus, k.FocusBack, k.RootCauses, k.Probes, k.Log},
		{k.Rerun, k.RerunAll, k.Filter, k.Failing, k.Copy, k.NextFix, k.PrevFix},
		{k.Export, k.Target, k.Policy, k.Flows, k.Sort, k.Reverse, k.Help, k.Quit},
	}
}
