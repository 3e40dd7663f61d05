package ui

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/internal/uitest"
)

// bigSession is a finished session of the demo's probes with n findings
// spread over them (copies of the lab's, each its own key), at w×h, the
// probe list unfolded.
func bigSession(b *testing.B, n, w, h int) *session {
	first, extra := uitest.Demo(b)
	s := newSession(b, w, h, first, extra)
	s.playAll(manyFindings(b, n))
	s.key("2")
	return s
}

// manyFindings are n copies of the lab's findings, each its own key.
func manyFindings(b *testing.B, n int) []model.Finding {
	base := uitest.Findings(b, "snat", "healthy")
	var fs []model.Finding
	for i := range n {
		f := base[i%len(base)]
		f.Key, f.CausedBy = fmt.Sprintf("%s#%d", f.ID, i), ""
		f.Title = fmt.Sprintf("%s (%d)", f.Title, i)
		fs = append(fs, f)
	}
	return fs
}

// BenchmarkFrame2000Findings is one frame (View) of a 200×60 screen with
// 2,000 findings in the probe list and one open in the detail.
func BenchmarkFrame2000Findings(b *testing.B) {
	s := bigSession(b, 2000, 200, 60)
	s.key("j")
	b.ResetTimer()
	for b.Loop() {
		_ = s.m.View()
	}
}

// BenchmarkEvent2000Findings is Update for one more event (a probe's
// progress line) with 2,000 findings on screen: the store, the list and
// the panes brought up to date.
func BenchmarkEvent2000Findings(b *testing.B) {
	s := bigSession(b, 2000, 200, 60)
	b.ResetTimer()
	for b.Loop() {
		s.event(s.r.id, "dns", model.EventProgress, nil, "querying")
	}
}

// BenchmarkFrame10000Flows is one frame of a finding whose capture holds
// 10,000 classified flows, scrolled into the middle of its table.
func BenchmarkFrame10000Flows(b *testing.B) {
	first, extra := uitest.Demo(b)
	s := newSession(b, 200, 60, first, extra)
	ev := []string{"capture on node nsl-node1, pod veth veth1234: 20000 packet(s), 10000 flow(s); pcap saved to /tmp/x.pcap"}
	for i := range 10000 {
		ev = append(ev, fmt.Sprintf("  nsl-node1 veth1234: SYN with no reply (2 SYNs to 192.168.%d.%d:80, nothing back)", i/250, i%250))
	}
	f := model.Finding{ID: "external.pod-unreachable", Key: "external.pod-unreachable", Probe: "external", Status: model.StatusFail, Title: "10,000 flows", Evidence: ev}
	s.run(s.r.id, "external", []model.Finding{f}, time.Second)
	s.key("2")
	s.key("g")
	s.key("j")
	s.key("tab")
	for range 500 {
		s.key("pgdown")
	}
	b.ResetTimer()
	for b.Loop() {
		_ = s.m.View()
	}
}

// flowsSession is a finished session of the demo's probes with 200
// findings and a capture of 10,000 flows (its pcap read into the flow
// table, F open and scrolled to the middle), at 200×60.
func flowsSession(b *testing.B) *session {
	first, extra := uitest.Demo(b)
	s := newSession(b, 200, 60, first, extra)
	s.playAll(append(manyFindings(b, 199), snatPcap(b, b.TempDir(), 9999)))
	s.key("2")
	s.send(s.key("F")()) // the pcap read, waited for
	if s.m.flowTab.Len() < 10000 {
		b.Fatalf("the flow table has %d flows, want 10,000 and more", s.m.flowTab.Len())
	}
	for range 80 {
		s.key("pgdown")
	}
	return s
}

// BenchmarkFrame200Findings10000Flows is one frame of the flow table with
// 10,000 flows over a session of 200 findings, and (Detail) one frame of
// the probes and detail panes of that session.
func BenchmarkFrame200Findings10000Flows(b *testing.B) {
	s := flowsSession(b)
	b.Run("FlowTable", func(b *testing.B) {
		for b.Loop() {
			_ = s.m.View()
		}
	})
	s.key("esc")
	s.key("j")
	b.Run("Detail", func(b *testing.B) {
		for b.Loop() {
			_ = s.m.View()
		}
	})
}

// BenchmarkMemory10000Flows reports the heap in use (after a GC) by a
// session holding 200 findings and the 10,000-flow table, less the heap
// before it was built.
func BenchmarkMemory10000Flows(b *testing.B) {
	var before, after runtime.MemStats
	var keep *session
	for b.Loop() {
		keep = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		keep = flowsSession(b)
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	runtime.KeepAlive(keep)
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/(1<<20), "heap-inuse-MB")
}
