package capture_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/netsleuth/netsleuth/probes/capture"
	"github.com/netsleuth/netsleuth/probes/capture/capturetest"
)

// benchPackets is the size of the in-memory capture BenchmarkDecodeFlows reads.
const benchPackets = 200_000

var benchPcap = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	if _, err := capturetest.WriteMix(&buf, capturetest.MixOptions{Packets: benchPackets, Seed: 7}); err != nil {
		panic(err)
	}
	return buf.Bytes()
})

// BenchmarkDecodeFlows reads a generated pcap of mixed traffic from memory
// into a flow table, once per iteration, reusing the table (Reset), so the
// figures are the steady state: packets/s (wall clock and, for a machine
// busy with other work, per second of CPU time) and allocations per packet.
func BenchmarkDecodeFlows(b *testing.B) {
	data := benchPcap()
	t := capture.NewTable("bench")
	if _, err := t.ReadCapture(bytes.NewReader(data), "bench", 0); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		t.Reset()
		if _, err := t.ReadCapture(bytes.NewReader(data), "bench", 0); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	elapsed, cpu := b.Elapsed().Seconds(), (cpuTime() - cpu0).Seconds()
	pk := float64(b.N) * benchPackets
	b.ReportMetric(pk/elapsed, "packets/s")
	if cpu > 0 {
		b.ReportMetric(pk/cpu, "packets/cpu-s") // the whole process's CPU time: an upper bound on the loop's
	}
	b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
		t.Reset()
		_, _ = t.ReadCapture(bytes.NewReader(data), "bench", 0)
	}))/benchPackets, "allocs/packet")
}
