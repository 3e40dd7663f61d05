// Command decode reads a capture file with netsleuth's decoder
// (capture.AnalyzeFile: pcap or pcapng into the flow table, then every
// flow's verdict, capture.Judge; the sentences saying them are rendered
// only for the flows a report shows) and prints what it found and how
// fast; it is what bench/capture/run.sh times next to tcpdump and tshark.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"time"

	"github.com/netsleuth/netsleuth/probes/capture"
)

func main() {
	profile := flag.String("cpuprofile", "", "write a CPU profile of the decoding to this file")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: decode [-cpuprofile FILE] CAPTURE")
		os.Exit(2)
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "decode:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	start, cpu0 := time.Now(), cpuTime()
	t, err := capture.AnalyzeFile(flag.Arg(0), capture.ReadOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "decode:", err)
		os.Exit(1) //nolint:gocritic // the profile of a failed run is not wanted
	}
	decoded, decodedCPU := time.Since(start), cpuTime()-cpu0
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	decodeMallocs, heap := ms.Mallocs, ms.HeapAlloc
	verdicts := map[capture.Verdict]int{}
	for _, f := range t.Flows() {
		verdicts[capture.Judge(f)]++
	}
	total := time.Since(start)
	runtime.ReadMemStats(&ms)
	fmt.Printf("heap after decoding %.1f MB, Go runtime total %.1f MB\n", float64(heap)/1e6, float64(ms.Sys)/1e6)
	totalCPU := cpuTime() - cpu0
	fmt.Printf("packets %d  flows %d  decode %.3fs (%.2f M packets/s, %d mallocs, %.4f per packet)  with classification %.3fs  GOMAXPROCS %d\n",
		t.Stats.Packets, t.Len(), decoded.Seconds(), float64(t.Stats.Packets)/decoded.Seconds()/1e6,
		decodeMallocs, float64(decodeMallocs)/float64(t.Stats.Packets), total.Seconds(), runtime.GOMAXPROCS(0))
	if decodedCPU > 0 {
		fmt.Printf("CPU time: decode %.3fs (%.2f M packets/s of CPU), with classification %.3fs (%.2f M packets/s)\n",
			decodedCPU.Seconds(), float64(t.Stats.Packets)/decodedCPU.Seconds()/1e6, totalCPU.Seconds(), float64(t.Stats.Packets)/totalCPU.Seconds()/1e6)
	}
	keys := make([]capture.Verdict, 0, len(verdicts))
	for v := range verdicts {
		keys = append(keys, v)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, v := range keys {
		fmt.Printf("  %-22s %d\n", v, verdicts[v])
	}
}
