// Command gen writes a pcap of synthetic mixed traffic (package
// capturetest's mix: TCP handshakes, data, resets and retransmissions;
// UDP; DNS answers, NXDOMAIN, SERVFAIL and unanswered queries; ICMP echo
// and unreachables; a fifth over IPv6) for bench/capture/run.sh.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/netsleuth/netsleuth/probes/capture/capturetest"
)

func main() {
	n := flag.Int("n", 1_000_000, "packets to write")
	seed := flag.Uint64("seed", 1, "random seed")
	out := flag.String("o", "mix.pcap", "output file")
	flag.Parse()
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	bytes, err := capturetest.WriteMix(f, capturetest.MixOptions{Packets: *n, Seed: *seed})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d packets, %d bytes of frames\n", *out, *n, bytes)
}
