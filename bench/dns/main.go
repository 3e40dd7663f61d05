// Command dnsbench compares DNS latency measured by netsleuth's dnsquery
// package with dig (BIND's dnsutils) against the same server in the same run,
// and measures the queries per second one process can drive. It is a
// benchmark, not a test; bench/dns/run.sh runs it against the lab.
//
// For each server it alternates rounds of the two tools so both see the same
// conditions. dig is timed two ways: the "Query time" it prints (whole
// milliseconds), and the wall time of a batch of queries in one dig process
// minus a one-query batch (the process start), divided by the queries.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/netsleuth/netsleuth/probes/dnsquery"
)

func main() {
	servers := flag.String("servers", "10.250.0.53,10.96.0.10", "comma-separated DNS servers (lab addresses only)")
	name := flag.String("name", "ext.netsleuth.test", "name to query")
	n := flag.Int("n", 200, "queries per tool per round")
	rounds := flag.Int("rounds", 9, "alternating rounds per tool")
	delay := flag.Duration("delay", 5*time.Millisecond, "latency of the extra in-process server on 127.0.0.1 (0 to skip)")
	qpsCount := flag.Int("qps-count", 20000, "queries for the queries/s figure")
	flag.Parse()
	list := strings.Split(*servers, ",")
	if *delay > 0 {
		addr, stop := delayedServer(*delay)
		defer stop()
		list = append(list, addr)
	}
	fmt.Println("latency, UDP, sequential; ms. netsleuth p50/p95 per query; round = mean of -n queries, median over -rounds;")
	fmt.Println("dig round = (wall of an -n query batch - wall of a 1 query batch) / (n-1); dig's printed Query time is in")
	fmt.Println("whole ms on a 4 ms clock here, shown for reference only.")
	fmt.Printf("%-22s %10s %10s %10s %12s %12s %7s %10s\n", "server", "ns p50", "ns p95", "ns round", "dig round", "dig printed", "ratio", "p50/dig")
	for _, s := range list {
		compare(s, *name, *n, *rounds)
	}
	for _, s := range list {
		qps(s, *name, *qpsCount)
	}
}

// compare prints netsleuth's and dig's latency for one server: per round,
// the mean of n sequential queries (netsleuth: measured per query; dig:
// amortized over one batch process), then the median over rounds.
func compare(server, name string, n, rounds int) {
	var ours, ourRounds, digRounds, digPrinted []float64
	for range rounds {
		o := seriesSamples(server, name, n)
		ours, ourRounds = append(ours, o...), append(ourRounds, mean(o))
		d, a := digRound(server, name, n)
		digPrinted, digRounds = append(digPrinted, d...), append(digRounds, a)
	}
	sort.Float64s(ours)
	ro, rd := median(ourRounds), median(digRounds)
	fmt.Printf("%-22s %10.3f %10.3f %10.3f %12.3f %12.3f %7.2f %10.2f\n", server,
		dnsquery.Percentile(ours, 50), dnsquery.Percentile(ours, 95), ro, rd, mean(digPrinted), ro/rd, dnsquery.Percentile(ours, 50)/rd)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return dnsquery.Percentile(s, 50)
}

// seriesSamples measures n sequential queries and returns each latency;
// dnsquery reports percentiles only, so samples come from single-query runs
// of the same code path.
func seriesSamples(server, name string, n int) []float64 {
	out := make([]float64, 0, n)
	for range n {
		r := dnsquery.Run(context.Background(), dnsquery.Spec{Servers: []dnsquery.Server{{Addr: server}}, Names: []string{name},
			Protocols: []string{"udp"}, Count: 1, TimeoutMs: 2000, EDNS: true})
		if r.Error != "" || r.Series[0].Answered != 1 {
			fmt.Fprintf(os.Stderr, "%s: netsleuth: %+v\n", server, r)
			os.Exit(1)
		}
		out = append(out, r.Series[0].P50Ms)
	}
	return out
}

var queryTime = regexp.MustCompile(`Query time: (\d+) msec`)

// digRound runs n queries in one dig process (batch file) and returns the
// Query times dig printed and the amortized wall time per query.
func digRound(server, name string, n int) ([]float64, float64) {
	dir, err := os.MkdirTemp("", "dnsbench")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	host, port := server, "53"
	if h, p, err := net.SplitHostPort(server); err == nil {
		host, port = h, p
	}
	line := fmt.Sprintf("@%s -p %s %s A +tries=1 +time=2 +nocookie +noall +stats\n", host, port, name)
	run := func(k int) (time.Duration, string) {
		f := filepath.Join(dir, strconv.Itoa(k))
		if err := os.WriteFile(f, []byte(strings.Repeat(line, k)), 0o600); err != nil {
			panic(err)
		}
		start := time.Now()
		out, err := exec.Command("dig", "-f", f).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "dig: %v\n%s", err, out)
			os.Exit(1)
		}
		return time.Since(start), string(out)
	}
	one, _ := run(1)
	all, out := run(n)
	var times []float64
	for _, m := range queryTime.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		times = append(times, v)
	}
	return times, float64((all - one).Microseconds()) / 1000 / float64(n-1)
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// qps drives series of dnsquery.MaxCount queries with 32 in flight from this
// one process until count queries were sent, and prints the median rate.
func qps(server, name string, count int) {
	var rates []float64
	sent, answered, timeouts := 0, 0, 0
	for sent < count {
		r := dnsquery.Run(context.Background(), dnsquery.Spec{Servers: []dnsquery.Server{{Addr: server}}, Names: []string{name},
			Protocols: []string{"udp"}, Count: dnsquery.MaxCount, Parallel: 32, TimeoutMs: 2000})
		s := r.Series[0]
		rates = append(rates, s.QPS)
		sent, answered, timeouts = sent+s.Sent, answered+s.Answered, timeouts+s.Timeouts
	}
	fmt.Printf("queries/s from one process to %-22s median %6.0f over %d series (%d answered of %d, %d timeouts)\n",
		server, median(rates), len(rates), answered, sent, timeouts)
}

// delayedServer answers every A query after d on 127.0.0.1, so dig's
// whole-millisecond Query time can be compared meaningfully.
func delayedServer(d time.Duration) (string, func()) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		time.Sleep(d)
		m := new(mdns.Msg)
		m.SetReply(r)
		if rr, err := mdns.NewRR(r.Question[0].Name + " 30 IN A 192.0.2.1"); err == nil {
			m.Answer = append(m.Answer, rr)
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	return pc.LocalAddr().String(), func() { _ = srv.Shutdown() }
}
