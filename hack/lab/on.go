package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The lab's nodes have no init system. A fix netsleuth hands out restarts a
// node service with systemctl and reads its log with journalctl, so the
// node entry ('on') puts stand-ins for both first on PATH: they map the
// service names a kubeadm node uses onto the lab's own processes.
const systemctlShim = `#!/bin/sh
# netsleuth lab: systemctl for a node without an init system.
case "$1" in
  daemon-reload) exit 0 ;;
  restart|start|stop|status|is-active) exec "$NSL_LAB" service "$1" "$2" --node "$NSL_NODE" ;;
  enable) echo "lab: systemctl enable is a no-op on the lab (no boot)" >&2; exit 0 ;;
esac
echo "lab: systemctl $* is not supported on the lab's nodes" >&2
exit 1
`

const journalctlShim = `#!/bin/sh
# netsleuth lab: journalctl -u UNIT for a node without an init system.
unit=""
while [ $# -gt 0 ]; do
  case "$1" in -u) unit="$2"; shift ;; esac
  shift
done
unit=${unit%.service}
exec tail -n 100 "$NSL_LOGS/$unit-$NSL_NODE.log"
`

// on runs command (a shell command line) on node as a person would on a
// real node: in its network namespace, as root, with KUBELET_CONFIG naming
// the node's kubelet configuration file, KUBECONFIG the admin kubeconfig,
// and systemctl/journalctl mapped onto the lab's processes.
func (l *lab) on(ctx context.Context, nodeName, command string) error {
	n, err := findNode(nodeName)
	if err != nil {
		return usageError{err.Error()}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	shims := filepath.Join(l.p.Lab, "shims")
	if err := os.MkdirAll(shims, 0o755); err != nil {
		return err
	}
	for name, body := range map[string]string{"systemctl": systemctlShim, "journalctl": journalctlShim} {
		if err := os.WriteFile(filepath.Join(shims, name), []byte(body), 0o755); err != nil {
			return err
		}
	}
	args := []string{"sh", "-c", command}
	if n.NetNS != "" {
		args = append([]string{"nsenter", "--net=/run/netns/" + n.NetNS, "--"}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		"PATH="+shims+":"+os.Getenv("PATH"),
		"KUBELET_CONFIG="+l.p.Node(n.Name, "kubelet.yaml"),
		"KUBECONFIG="+l.p.Kubeconfig(),
		"NSL_LAB="+self, "NSL_NODE="+n.Name, "NSL_LOGS="+filepath.Dir(l.p.Log("x")))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("on %s: %s: %w", n.Name, command, err)
	}
	return nil
}

// service is the systemctl stand-in: it restarts, starts, stops or reports
// a node's kubelet or kube-proxy without touching its configuration file
// (a fix under test has just edited it).
func (l *lab) service(ctx context.Context, action, unit, nodeName string) error {
	n, err := findNode(nodeName)
	if err != nil {
		return usageError{err.Error()}
	}
	name := strings.TrimSuffix(unit, ".service")
	var p proc
	switch name {
	case "kubelet":
		p = l.kubeletProc(n)
	case "kube-proxy":
		p = l.kubeProxyProc(n)
	default:
		return fmt.Errorf("the lab's node %s runs no service %q (only kubelet and kube-proxy)", n.Name, unit)
	}
	since := time.Now()
	_, running := l.alive(p.Name)
	switch action {
	case "status", "is-active":
		if !running {
			return fmt.Errorf("%s is not running on %s", name, n.Name)
		}
		fmt.Printf("%s on %s: active\n", name, n.Name)
		return nil
	case "stop":
		l.stop(p.Name, 5*time.Second)
		return nil
	case "restart":
		l.stop(p.Name, 5*time.Second)
	}
	if err := l.start(p); err != nil {
		return err
	}
	if name == "kubelet" {
		return l.waitKubelet(ctx, n, since)
	}
	return nil
}
