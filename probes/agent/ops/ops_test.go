package ops

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
)

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

func TestTCPConnectAndRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	resp := Run(context.Background(), Request{Ops: []Op{
		{Kind: TCP, Target: "127.0.0.1", Port: port},
		{Kind: TCP, Target: "127.0.0.1", Port: freePort(t)},
	}}, Env{})
	if r := resp.Results[0]; r.Outcome != OK || len(r.RTTsMs) != 1 || r.Local == "" {
		t.Errorf("open port: %+v", r)
	}
	if r := resp.Results[1]; r.Outcome != Refused {
		t.Errorf("closed port: got %s (%s), want refused", r.Outcome, r.Error)
	}
}

func TestUDPEcho(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], a)
		}
	}()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	resp := Run(context.Background(), Request{Ops: []Op{
		{Kind: UDP, Target: "127.0.0.1", Port: port, Count: 3},
		{Kind: UDP, Target: "127.0.0.1", Port: freePort(t), Count: 2, TimeoutMs: 200},
	}}, Env{})
	if r := resp.Results[0]; r.Outcome != OK || r.Sent != 3 || r.Received != 3 || r.Loss() != 0 {
		t.Errorf("echo: %+v", r)
	}
	// Linux reports the ICMP port unreachable of a connected UDP socket.
	if r := resp.Results[1]; r.Reached() || r.Received != 0 {
		t.Errorf("closed port answered: %+v", r)
	}
}

func TestHTTPGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hello")) }))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	r := Run(context.Background(), Request{Ops: []Op{{Kind: HTTP, Target: host, Port: p, Path: "/x"}}}, Env{}).Results[0]
	if r.Outcome != OK || r.Status != 200 || r.Body != "hello" {
		t.Errorf("http: %+v", r)
	}
}

func TestICMPLoopback(t *testing.T) {
	r := Run(context.Background(), Request{Ops: []Op{{Kind: ICMP, Target: "127.0.0.1", Count: 2, TimeoutMs: 500}}}, Env{}).Results[0]
	if r.Outcome == PermissionDeny {
		t.Skipf("no ICMP socket allowed here: %s", r.Error)
	}
	if r.Outcome != OK || r.Received != 2 {
		t.Errorf("icmp: %+v", r)
	}
}

const procRoute = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
nsl-cni0	0000F40A	00000000	0001	0	0	0	00FFFFFF	0	0	0
*	0000F40A	00000000	0201	0	0	4000	0000FFFF	0	0	0
nsl-br0	0001F40A	0200FA0A	0003	0	0	0	00FFFFFF	0	0	0
*	0002A8C0	00000000	0201	0	0	4000	00FFFFFF	0	0	0
`

func TestParseProcRouteAndLookup(t *testing.T) {
	rs, err := ParseProcRoute(procRoute)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 5 || rs[0].Dst != "0.0.0.0/0" || rs[0].Gateway != "192.0.2.1" || rs[3].String() != "10.244.1.0/24 via 10.250.0.2 dev nsl-br0" {
		t.Fatalf("routes: %+v", rs)
	}
	cases := map[string]string{
		"10.244.1.5":   "10.244.1.0/24 via 10.250.0.2 dev nsl-br0",
		"10.244.0.9":   "10.244.0.0/24 dev nsl-cni0",
		"10.244.7.1":   "unreachable 10.244.0.0/16 metric 4000",
		"192.168.2.10": "unreachable 192.168.2.0/24 metric 4000",
		"192.0.2.77":   "0.0.0.0/0 via 192.0.2.1 dev eth0",
	}
	for dst, want := range cases {
		r, ok := Lookup(rs, netip.MustParseAddr(dst))
		if !ok || r.String() != want {
			t.Errorf("Lookup(%s) = %q, want %q", dst, r.String(), want)
		}
	}
}

func TestRoutesAndReadFilesFromFakeProc(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "net/route"), []byte(procRoute), 0o644); err != nil {
		t.Fatal(err)
	}
	resp := Run(context.Background(), Request{Ops: []Op{
		{Kind: Routes},
		{Kind: ReadFiles, Paths: []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/nonexistent"}},
		{Kind: IPTablesSave},
	}}, Env{ProcRoot: dir})
	if resp.Error != "" {
		t.Fatalf("refused: %s", resp.Error)
	}
	if r := resp.Results[0]; r.Outcome != OK || len(r.Routes) != 5 {
		t.Errorf("routes: %+v", r)
	}
	r := resp.Results[1]
	if _, ok := r.Files["/proc/sys/net/ipv4/ip_forward"]; !ok || r.Error == "" || len(r.Files) != 1 || r.Outcome != OK {
		t.Errorf("read-files: a missing sysctl is an error of the op, not a refusal: %+v", r)
	}
	if r := resp.Results[2]; r.Outcome != Failed {
		t.Errorf("iptables-save without a host root: %+v", r)
	}
}

// TestHTTPReset: a server that accepts and then resets the connection is a
// reset, which arrived (the path works), not a failure of the network.
func TestHTTPReset(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 512)
			_, _ = c.Read(buf) // the request
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close() // RST
		}
	}()
	r := Run(context.Background(), Request{Ops: []Op{{Kind: HTTP, Target: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, Path: "/"}}}, Env{}).Results[0]
	if r.Outcome != Reset || !r.Arrived() || r.Reached() {
		t.Errorf("reset: got %s (%s), arrived %v", r.Outcome, r.Error, r.Arrived())
	}
}

// TestClassifyFacts: each kernel answer is its own fact, and only the ones
// that prove the packets reached the target's host count as arrived.
func TestClassifyFacts(t *testing.T) {
	cases := []struct {
		err     error
		want    Outcome
		arrived bool
	}{
		{nil, OK, true},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, Refused, true},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, Reset, true},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, HostUnreach, false},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, NetUnreach, false},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EPERM)}, AdminProhibit, false},
		{os.ErrDeadlineExceeded, Timeout, false},
		{errors.New("something else"), Failed, false},
	}
	for _, c := range cases {
		got := Classify(c.err)
		if got != c.want || (Result{Outcome: got}).Arrived() != c.arrived {
			t.Errorf("Classify(%v) = %s (arrived %v), want %s (arrived %v)", c.err, got, Result{Outcome: got}.Arrived(), c.want, c.arrived)
		}
		if !slices.Contains(Outcomes, got) {
			t.Errorf("Outcomes lacks %s", got)
		}
	}
}

// TestICMPFacts: the ICMP code decides the outcome, and a port unreachable
// from another address than the target is a firewall's REJECT on the way,
// not an arrival.
func TestICMPFacts(t *testing.T) {
	op := Op{Kind: TCP, Target: "192.168.2.10", Port: 80}
	cases := []struct {
		icmp              ICMPError
		want              Outcome
		arrived, rejected bool
	}{
		{ICMPError{3, 3, "192.168.2.10"}, Refused, true, true}, // the target's own firewall
		{ICMPError{3, 3, "10.250.0.254"}, Refused, false, true},
		{ICMPError{3, 13, "10.250.0.254"}, AdminProhibit, false, true},
		{ICMPError{3, 1, "10.250.0.254"}, HostUnreach, false, false},
		{ICMPError{3, 0, "10.250.0.254"}, NetUnreach, false, false},
	}
	for _, c := range cases {
		r := Result{Op: op, Outcome: c.icmp.outcome(), ICMP: &c.icmp}
		if r.Outcome != c.want || r.Arrived() != c.arrived {
			t.Errorf("%s: %s (arrived %v), want %s (arrived %v)", c.icmp, r.Outcome, r.Arrived(), c.want, c.arrived)
		}
		if r.Rejected() != c.rejected || r.NotListening() {
			t.Errorf("%s in answer to a TCP connect: rejected %v, want %v; never a closed port's", c.icmp, r.Rejected(), c.rejected)
		}
	}
	if r := (Result{Op: op, Outcome: Refused}); !r.NotListening() || r.Rejected() {
		t.Error("a TCP reset: nothing listens")
	}
	udp := Result{Op: Op{Kind: UDP, Target: "192.168.2.10"}, Outcome: Refused, ICMP: &ICMPError{3, 3, "192.168.2.10"}}
	if !udp.NotListening() || udp.Rejected() {
		t.Error("a UDP port unreachable from the target: nothing listens")
	}
	if s := (ICMPError{3, 13, "10.250.0.254"}).String(); s != "ICMP destination unreachable code 13 (communication administratively prohibited) from 10.250.0.254" {
		t.Error(s)
	}
}
