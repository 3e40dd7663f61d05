package ui

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/netsleuth/netsleuth/ui/components/flowtable"
)

func liveRows(n int) []flowtable.Row {
	rows := make([]flowtable.Row, n)
	for i := range rows {
		rows[i] = flowtable.Row{ID: string(rune('a' + i)), Iface: "n1/eth0", Proto: "tcp", Class: "tcp-no-reply", Problem: true,
			Packets: uint64(i + 1), First: t0.Add(time.Duration(i) * time.Millisecond)}
	}
	return rows
}

// TestLiveCaptureUpdates: snapshots replace the rows every second and keep
// the selection; q asks the capture to stop once, and its end quits.
func TestLiveCaptureUpdates(t *testing.T) {
	var n, stops atomic.Int32
	n.Store(3)
	done := make(chan struct{})
	m := newLiveModel(LiveCapture{Title: "node n1, uplink eth0", Rows: func() []flowtable.Row { return liveRows(int(n.Load())) },
		Done: done, Stop: func() { stops.Add(1) }}, func() time.Time { return t0 })
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	_, cmd := m.Update(m.readRows()())
	if cmd == nil || m.tab.Len() != 3 {
		t.Fatalf("first snapshot: %d rows, next tick %v", m.tab.Len(), cmd)
	}
	m.Update(keyPress("j"))
	n.Store(5)
	if _, cmd := m.Update(tickedMsg{}); cmd == nil {
		t.Fatal("a tick did not read the capture again")
	} else {
		m.Update(cmd())
	}
	if r, _ := m.tab.Selected(); m.tab.Len() != 5 || r.ID != "b" {
		t.Errorf("after the update: %d rows, selected %q", m.tab.Len(), r.ID)
	}
	if v := m.View().Content; !strings.Contains(v, "capturing node n1, uplink eth0 for 0s") || !strings.Contains(v, "flow 2/5") {
		t.Errorf("view:\n%s", v)
	}
	m.Update(keyPress("q"))
	m.Update(keyPress("q"))
	if stops.Load() != 1 || !strings.Contains(m.View().Content, "stopping the capture") {
		t.Errorf("q stopped the capture %d times", stops.Load())
	}
	if _, cmd := m.Update(captureEndedMsg{}); cmd == nil {
		t.Error("the capture's end did not quit")
	}
}
