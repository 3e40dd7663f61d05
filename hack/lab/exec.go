package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// step prints one line of progress; builds take minutes, so every step says
// what it is doing.
func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "lab: "+format+"\n", args...)
}

// run executes a command and returns its combined output, wrapping failures
// with the command line and what it printed.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// runIn executes a command in dir and returns its standard output.
func runIn(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// inNS runs a command inside a lab network namespace (host when ns is "").
// nsenter --net keeps the host's mount namespace, which containerd and kubelet
// need to share (CLUSTER.md: not ip netns exec).
func inNS(ctx context.Context, ns, name string, args ...string) (string, error) {
	if ns == "" {
		return run(ctx, name, args...)
	}
	return run(ctx, "nsenter", append([]string{"--net=/run/netns/" + ns, "--", name}, args...)...)
}

// proc is a long-running lab process.
type proc struct {
	Name  string   // unique: "etcd", "kubelet-nsl-node1"
	NetNS string   // "" for the host
	Args  []string // argv, Args[0] the binary
	Env   []string
}

// start launches p detached from the harness (own session) with its output in
// the lab log, and records its PID.
func (l *lab) start(p proc) error {
	if pid, ok := l.alive(p.Name); ok {
		step("%s already running (pid %d)", p.Name, pid)
		return nil
	}
	logf, err := os.OpenFile(l.p.Log(p.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	argv := p.Args
	if p.NetNS != "" {
		argv = append([]string{"nsenter", "--net=/run/netns/" + p.NetNS, "--"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	fmt.Fprintf(logf, "---- %s %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	step("started %s (pid %d, log %s)", p.Name, pid, l.rel(l.p.Log(p.Name)))
	return os.WriteFile(l.p.PID(p.Name), []byte(strconv.Itoa(pid)), 0o644)
}

// alive reports the recorded PID of a lab process and whether it still runs
// the program the lab started (guards against PID reuse).
func (l *lab) alive(name string) (int, bool) {
	b, err := os.ReadFile(l.p.PID(name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return pid, false
	}
	// A zombie (state Z) has exited.
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return pid, false
	}
	return pid, true
}

// stop ends a lab process by its recorded PID: SIGTERM, then SIGKILL after
// grace (kube-apiserver takes more than 2 s to exit on SIGTERM).
func (l *lab) stop(name string, grace time.Duration) {
	pid, ok := l.alive(name)
	if !ok {
		_ = os.Remove(l.p.PID(name))
		return
	}
	// The recorded PID is nsenter's for namespaced processes; nsenter execs the
	// program, so the PID is the program's own.
	// SIGCONT first: a process a fault froze (SIGSTOP) would not act on
	// SIGTERM.
	_ = syscall.Kill(pid, syscall.SIGCONT)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if _, ok := l.alive(name); !ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, ok := l.alive(name); ok {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)
	}
	step("stopped %s (pid %d)", name, pid)
	_ = os.Remove(l.p.PID(name))
}

// procNames lists the lab processes with a PID file.
func (l *lab) procNames() []string {
	m, _ := filepath.Glob(filepath.Join(l.p.Lab, "pids", "*.pid"))
	var out []string
	for _, f := range m {
		out = append(out, strings.TrimSuffix(filepath.Base(f), ".pid"))
	}
	return out
}

func (l *lab) rel(path string) string {
	if r, err := filepath.Rel(l.p.Root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// lookPath finds a program on PATH or in the sbin directories, which a
// non-login root shell may lack on PATH.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}
