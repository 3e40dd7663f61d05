package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startRun runs labecho in-process and returns the bound addresses by kind.
func startRun(t *testing.T, args ...string) (map[string][]string, *syncBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	addrs := map[string][]string{}
	var mu sync.Mutex
	readyc := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, logs, func(kind, addr string) {
			mu.Lock()
			addrs[kind] = append(addrs[kind], addr)
			mu.Unlock()
			readyc <- struct{}{}
		})
	}()
	for i := 0; i < len(args)/2; i++ {
		select {
		case <-readyc:
		case err := <-done:
			cancel()
			t.Fatalf("run exited early: %v\n%s", err, logs)
		case <-time.After(10 * time.Second):
			cancel()
			t.Fatal("servers did not start")
		}
	}
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return fmt.Errorf("run did not return after cancel")
		}
	}
	return addrs, logs, stop
}

func TestServers(t *testing.T) {
	addrs, logs, stop := startRun(t,
		"--http", "127.0.0.1:0", "--tcp-echo", "127.0.0.1:0",
		"--udp-echo", "127.0.0.1:0", "--udp-echo", "127.0.0.1:0")
	checkHTTP(t, addrs["http"][0])
	conn := checkTCPEcho(t, addrs["tcp-echo"][0])
	for _, a := range addrs["udp-echo"] {
		checkUDPEcho(t, a)
	}
	if n := strings.Count(logs.String(), "\n"); n != 4 {
		t.Errorf("want 4 log lines, got:\n%s", logs)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The open echo connection is closed on shutdown.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("tcp echo connection still open after shutdown")
	}
	if _, err := net.DialTimeout("tcp", addrs["http"][0], time.Second); err == nil {
		t.Error("http listener still open after shutdown")
	}
}

func checkHTTP(t *testing.T, addr string) {
	t.Helper()
	host, _ := os.Hostname()
	resp, err := http.Get("http://" + addr + "/some/path")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	prefix := "netsleuth-labecho " + host + " 127.0.0.1:"
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), prefix) || !strings.HasSuffix(string(body), "\n") {
		t.Errorf("GET / = %d %q, want prefix %q", resp.StatusCode, body, prefix)
	}
	resp, err = http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("GET /healthz = %d %q", resp.StatusCode, body)
	}
}

func checkTCPEcho(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	for _, msg := range []string{"hello\n", "again"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != msg {
			t.Fatalf("tcp echo = %q, %v; want %q", got, err, msg)
		}
	}
	conn.SetDeadline(time.Time{})
	return conn
}

func checkUDPEcho(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := "ping " + addr
	buf := make([]byte, 1500)
	for try := 0; try < 3; try++ { // loopback UDP is reliable; retry anyway
		conn.Write([]byte(msg))
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := conn.Read(buf)
		if err == nil {
			if string(buf[:n]) != msg {
				t.Fatalf("udp echo = %q, want %q", buf[:n], msg)
			}
			return
		}
	}
	t.Fatalf("no udp echo from %s", addr)
}

func TestBadArgs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, args := range [][]string{
		{"--tcp-echo", "127.0.0.1:0", "--http", ln.Addr().String()}, // address in use
		{"--udp-echo", "not-an-address"},
		{"--bogus"},
		{"extra"},
	} {
		err := run(context.Background(), args, io.Discard, nil)
		if err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

func TestBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "labecho")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--http", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "labecho: http listening on "
	if !strings.HasPrefix(line, prefix) {
		t.Fatalf("log line %q", line)
	}
	checkHTTP(t, strings.TrimSpace(strings.TrimPrefix(line, prefix)))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		io.Copy(io.Discard, stderr) // drain until exit, then Wait
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("labecho exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("labecho did not exit after SIGTERM")
	}
}
