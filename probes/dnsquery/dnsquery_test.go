package dnsquery

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// testServer is an in-process DNS server on 127.0.0.1 (UDP and TCP on the
// same random port) whose answers the test controls by name.
type testServer struct {
	addr    string
	queries atomic.Int64
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		ts.queries.Add(1)
		m := new(mdns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch q.Name {
		case "ok.test.", "kubernetes.default.svc.cluster.local.":
			if q.Qtype == mdns.TypeA {
				m.Answer = append(m.Answer, a(q.Name, "192.0.2.1"))
			}
		case "slow.test.":
			time.Sleep(30 * time.Millisecond)
			m.Answer = append(m.Answer, a(q.Name, "192.0.2.2"))
		case "fail.test.":
			m.Rcode = mdns.RcodeServerFailure
		case "drop.test.":
			return // never answer: the client times out
		case "big.test.":
			for i := range 60 {
				m.Answer = append(m.Answer, a(q.Name, fmt.Sprintf("192.0.2.%d", i+1)))
			}
			if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
				size := mdns.MinMsgSize
				if o := r.IsEdns0(); o != nil {
					size = int(o.UDPSize())
				}
				m.Truncate(size)
			}
		default:
			m.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = pc.LocalAddr().String()
	l, err := net.Listen("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	udp := &mdns.Server{PacketConn: pc, Handler: h}
	tcp := &mdns.Server{Listener: l, Handler: h}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() { _ = udp.Shutdown(); _ = tcp.Shutdown() })
	return ts
}

func a(name, ip string) mdns.RR {
	rr, _ := mdns.NewRR(name + " 30 IN A " + ip)
	return rr
}

func series(t *testing.T, r Result, name, proto string) Series {
	t.Helper()
	for _, s := range r.Series {
		if s.Name == mdns.Fqdn(name) && s.Proto == proto {
			return s
		}
	}
	t.Fatalf("no series %s/%s in %+v", name, proto, r)
	return Series{}
}

func TestRunOutcomes(t *testing.T) {
	ts := startServer(t)
	r := Run(context.Background(), Spec{
		Servers:   []Server{{Hop: "test", Addr: ts.addr}},
		Names:     []string{"ok.test", "slow.test", "fail.test", "nx.test", "drop.test", "big.test"},
		Count:     4,
		TimeoutMs: 200,
	})
	if r.Error != "" || len(r.Series) != 12 {
		t.Fatalf("%+v", r)
	}
	for _, proto := range []string{"udp", "tcp"} {
		ok := series(t, r, "ok.test", proto)
		if !ok.OK() || ok.Sent != 4 || len(ok.Answers) != 1 || !strings.Contains(ok.Answers[0], "192.0.2.1") || ok.P50Ms <= 0 {
			t.Errorf("%s ok: %+v", proto, ok)
		}
		slow := series(t, r, "slow.test", proto)
		if slow.P50Ms < 30 || slow.P95Ms < slow.P50Ms || slow.MaxMs < slow.P95Ms {
			t.Errorf("%s slow: latency not measured: %+v", proto, slow)
		}
		if s := series(t, r, "fail.test", proto); s.Rcodes["SERVFAIL"] != 4 || s.OK() {
			t.Errorf("%s servfail: %+v", proto, s)
		}
		if s := series(t, r, "nx.test", proto); s.Rcodes["NXDOMAIN"] != 4 {
			t.Errorf("%s nxdomain: %+v", proto, s)
		}
		if s := series(t, r, "drop.test", proto); s.Timeouts != 4 || s.Answered != 0 || s.LastError == "" {
			t.Errorf("%s timeouts: %+v", proto, s)
		}
	}
	if s := series(t, r, "big.test", "udp"); s.Truncated != 4 || s.OK() {
		t.Errorf("udp answer over 512 bytes must be truncated: %+v", s)
	}
	if s := series(t, r, "big.test", "tcp"); s.Truncated != 0 || !s.OK() {
		t.Errorf("tcp carries the whole answer: %+v", s)
	}
}

func TestRunParallelCountsEveryQuery(t *testing.T) {
	ts := startServer(t)
	r := Run(context.Background(), Spec{Servers: []Server{{Addr: ts.addr}}, Names: []string{"ok.test"},
		Protocols: []string{"udp"}, Count: 200, Parallel: 8, EDNS: true})
	s := r.Series[0]
	if s.Sent != 200 || s.Answered != 200 || s.QPS <= 0 || ts.queries.Load() != 200 {
		t.Errorf("%+v (server saw %d)", s, ts.queries.Load())
	}
}

func TestRunUnreachableServerIsAnError(t *testing.T) {
	// A closed UDP port on loopback answers with ICMP port unreachable.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	r := Run(context.Background(), Spec{Servers: []Server{{Addr: addr}}, Names: []string{"ok.test"}, Protocols: []string{"udp", "tcp"}, Count: 2, TimeoutMs: 300})
	for _, s := range r.Series {
		if s.Answered != 0 || s.Errors+s.Timeouts != 2 || !strings.Contains(s.LastError, "refused") {
			t.Errorf("%s: %+v", s.Proto, s)
		}
	}
}

func TestSpecValidation(t *testing.T) {
	for _, sp := range []Spec{
		{Servers: []Server{{Addr: "127.0.0.1"}}, Names: []string{"x"}, Type: "BOGUS"},
		{Servers: []Server{{Addr: "127.0.0.1"}}, Names: []string{"x"}, Protocols: []string{"quic"}},
		{Servers: make([]Server, 100), Names: []string{"a", "b"}},
	} {
		if r := Run(context.Background(), sp); r.Error == "" {
			t.Errorf("want an error for %+v", sp)
		}
	}
	if hostPort("10.96.0.10") != "10.96.0.10:53" || hostPort("127.0.0.1:5353") != "127.0.0.1:5353" || hostPort("fd00::10") != "[fd00::10]:53" {
		t.Error("hostPort")
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if Percentile(v, 50) != 5 || Percentile(v, 95) != 10 || Percentile(nil, 50) != 0 || Percentile([]float64{7}, 95) != 7 {
		t.Errorf("p50 %v p95 %v", Percentile(v, 50), Percentile(v, 95))
	}
}

const podResolvConf = `search app.svc.cluster.local svc.cluster.local cluster.local
nameserver 10.96.0.10
options ndots:5
`

func TestParseResolvConfAndCandidates(t *testing.T) {
	rc, err := ParseResolvConf(podResolvConf)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Ndots != 5 || len(rc.Search) != 3 || rc.Nameservers[0] != "10.96.0.10" {
		t.Fatalf("%+v", rc)
	}
	c := rc.Candidates("kubernetes.default")
	want := []string{"kubernetes.default.app.svc.cluster.local.", "kubernetes.default.svc.cluster.local.", "kubernetes.default.cluster.local.", "kubernetes.default."}
	if strings.Join(c, " ") != strings.Join(want, " ") {
		t.Errorf("candidates %v", c)
	}
	// ndots:5 sends even a 4-dot external name through every search domain first.
	if c := rc.Candidates("www.example.co.uk"); len(c) != 4 || c[3] != "www.example.co.uk." {
		t.Errorf("external name: %v", c)
	}
}

func TestRunSearchCostsAShortName(t *testing.T) {
	ts := startServer(t)
	r := Run(context.Background(), Spec{TimeoutMs: 500,
		Search: &SearchSpec{Name: "kubernetes.default", ResolvConf: podResolvConf, Server: ts.addr}})
	s := r.Search
	if s == nil || s.Error != "" {
		t.Fatalf("%+v", s)
	}
	// app.svc → NXDOMAIN (A, AAAA), svc → A answer, AAAA NODATA: 4 queries.
	if s.ResolvedAs != "kubernetes.default.svc.cluster.local." || s.Queries != 4 || len(s.Steps) != 4 || s.Steps[0].Rcode != "NXDOMAIN" {
		t.Errorf("%+v", s)
	}
	b, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(b), `"resolvedAs":"kubernetes.default.svc.cluster.local."`) {
		t.Errorf("JSON %s %v", b, err)
	}
}
