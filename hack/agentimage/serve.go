package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// serveOptions bound the loopback registry's life: it is a helper for one
// GoReleaser run, so it stops by itself.
type serveOptions struct {
	Owner int           // stop once this process (the GoReleaser run) is gone; 0: none
	Max   time.Duration // in all, owner or not
}

// checkLoopback refuses a base reference whose registry is not on this
// machine's loopback: serve-base never listens anywhere else.
func checkLoopback(ref name.Reference) (string, error) {
	host, port, err := net.SplitHostPort(ref.Context().RegistryStr())
	if err != nil {
		return "", fmt.Errorf("base %s: its registry needs host:port on loopback: %w", ref, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("base %s: serve-base listens on loopback only, not on %s", ref, host)
	}
	return net.JoinHostPort(host, port), nil
}

// serving reports whether the registry at ref already serves the base with
// ref's digest (a serve-base started earlier, by another GoReleaser run).
func serving(ctx context.Context, ref name.Digest) bool {
	d, err := remote.Head(ref, remote.WithContext(ctx))
	return err == nil && d.Digest.String() == ref.DigestStr()
}

// serveBase serves idx at ref on loopback until o's limits pass or ctx ends.
// ready is called once the base can be pulled.
func serveBase(ctx context.Context, ref name.Digest, idx v1.ImageIndex, o serveOptions, ready func()) error {
	addr, err := checkLoopback(ref)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve the base at %s: %w (is another serve-base, for another base, still running? it stops when its GoReleaser run ends)", addr, err)
	}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: reg}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer srv.Close()
	if err := remote.WriteIndex(ref.Context().Tag("base"), idx, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("push the base to %s: %w", addr, err)
	}
	if !serving(ctx, ref) {
		return fmt.Errorf("the base pushed to %s does not have the pinned digest %s: update base_image in %s to the digest `agentimage digest` prints", addr, ref.DigestStr(), configFile)
	}
	ready()
	deadline := time.NewTimer(o.Max)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-deadline.C:
			log.Printf("serve-base: stopping after %s in all", o.Max)
			return nil
		case <-tick.C:
			if o.Owner != 0 && !alive(o.Owner) {
				log.Printf("serve-base: stopping, process %d (the GoReleaser run) is gone", o.Owner)
				return nil
			}
		}
	}
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// hookOwner is the process that ran this program, skipping the go command
// of a `go run`: for a GoReleaser before hook, the GoReleaser run.
func hookOwner() int {
	pid := os.Getppid()
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "go" {
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			// pid (comm) state ppid ...; comm may hold spaces, so cut after ")".
			if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 1 {
				if ppid, err := strconv.Atoi(f[1]); err == nil {
					return ppid
				}
			}
		}
	}
	return pid
}

// detach starts this program again as `serve-base` in a session of its own,
// its output in logPath, and returns once the base can be pulled: a GoReleaser
// hook returns while the registry keeps serving the run, and stops when the
// run (hookOwner) ends.
func detach(ctx context.Context, ref name.Digest, args []string, logPath string) error {
	if serving(ctx, ref) {
		fmt.Printf("serve-base: %s is already served\n", ref)
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, append(args, "-owner", strconv.Itoa(hookOwner()))...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start serve-base: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		select {
		case err := <-exited:
			return fmt.Errorf("serve-base exited at once (%v); its log, %s, says why", err, logPath)
		default:
		}
		if serving(ctx, ref) {
			fmt.Printf("serve-base: serving %s (pid %d, log %s)\n", ref, cmd.Process.Pid, logPath)
			return cmd.Process.Release()
		}
	}
	_ = cmd.Process.Kill()
	return errors.New("serve-base did not serve the base within 30s; its log, " + logPath + ", says why")
}

// defaultLogPath is where a detached serve-base writes.
func defaultLogPath() string {
	return filepath.Join(os.TempDir(), "netsleuth-agent-base.log")
}
