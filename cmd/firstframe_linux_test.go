//go:build linux

package cmd

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal of w×h and returns its master and slave.
func openPTY(w, h int) (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	err = unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(w), Row: uint16(h)})
	return master, slave, err
}

// slowAPIServer answers /version at once and every other request (the
// header's discovery, the probes' reads) only after delay, so a first
// frame that waited for them would come after delay.
func slowAPIServer(t testing.TB, delay time.Duration) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/version" {
			fmt.Fprint(w, `{"major":"1","minor":"36","gitVersion":"v1.36.3"}`)
			return
		}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
	}))
	t.Cleanup(srv.Close)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: slow\n  cluster:\n    server: %s\ncontexts:\n- name: slow\n  context:\n    cluster: slow\n    user: u\ncurrent-context: slow\nusers:\n- name: u\n  user:\n    token: t\n", srv.URL)
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return kc
}

// firstFrame starts bin in an 80×24 pty and returns how long until the
// first frame's header (the server's version) arrives on the terminal.
func firstFrame(b *testing.B, bin, kubeconfig, cache string) time.Duration {
	master, slave, err := openPTY(80, 24)
	if err != nil {
		b.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	cmd := exec.Command(bin, "--kubeconfig", kubeconfig, "--probe", "runtime", "--read-only")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache, "TERM=xterm-256color", "NO_COLOR=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	slave.Close()
	defer func() {
		_ = cmd.Process.Kill() // the process this benchmark started, by its PID
		_ = cmd.Wait()
	}()
	var seen []byte
	buf := make([]byte, 64<<10)
	_ = master.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := master.Read(buf)
		seen = append(seen, buf[:n]...)
		if bytes.Contains(seen, []byte("v1.36.3")) {
			return time.Since(start)
		}
		if err != nil {
			b.Fatalf("no first frame (%v); the terminal got:\n%q", err, seen)
		}
	}
}

// BenchmarkFirstFrame is the time from starting the built binary (the TUI
// in an 80×24 pseudo-terminal) to its first frame's bytes, against an API
// server that answers /version at once and everything else after 2 s: a
// first frame under 2 s did not wait for the cluster discovery or the
// probes. first-frame-ms is the median of the iterations.
func BenchmarkFirstFrame(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "netsleuth")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	kc := slowAPIServer(b, 2*time.Second)
	var ds []time.Duration
	for b.Loop() {
		ds = append(ds, firstFrame(b, bin, kc, dir))
	}
	slices.Sort(ds)
	med := ds[len(ds)/2]
	if med >= 2*time.Second {
		b.Errorf("the first frame came after %s: it waited for the API server", med)
	}
	b.ReportMetric(float64(med.Microseconds())/1000, "first-frame-ms")
}
