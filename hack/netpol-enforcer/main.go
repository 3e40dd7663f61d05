// Command netpol-enforcer is a LAB TEST FIXTURE, not part of the netsleuth
// product. It is never shipped; it exists so the local real-cluster lab
// (bridge CNI, br_netfilter, kube-proxy in iptables mode) enforces
// networking.k8s.io/v1 NetworkPolicy, since no ready-made enforcer builds
// here.
//
// One instance runs per node (inside the node's network namespace) and
// polices only pods scheduled on that node: ingress for local destination
// pods, egress for local source pods. hostNetwork pods are never policed.
//
// Data plane (filter table, iptables-restore --noflush, our chains only):
//
//	FORWARD      -I 1: -m comment --comment netsleuth-lab-netpol -j <prefix>-FWD
//	<prefix>-FWD  ESTABLISHED,RELATED -j ACCEPT; clear marks;
//	              per egress-isolated local pod: -s IP -j <prefix>-E-<hash>,
//	                -s IP, egress mark unset -j DROP;
//	              per ingress-isolated local pod: -d IP -j <prefix>-I-<hash>,
//	                -d IP, ingress mark unset -j DROP;
//	              clear marks (allowed traffic returns to FORWARD)
//	<prefix>-E/I-<hash>  one rule per allowed peer x port, setting the mark
//	<prefix>-B-<hash>    an ipBlock: except -j RETURN, then the allow marks
//
// Marks 0x100000 (egress allowed) and 0x200000 (ingress allowed) stay clear of
// kube-proxy's 0x4000/0x8000. SIGTERM/SIGINT remove every chain and the jump.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const onceTimeout = 60 * time.Second

type options struct {
	kubeconfig string
	node       string
	prefix     string
	resync     time.Duration
	once       bool
	cleanup    bool
	restore    string
	iptables   string
	verbose    bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("netpol-enforcer", flag.ContinueOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig path (empty: in-cluster config)")
	fs.StringVar(&o.node, "node", "", "enforce for pods scheduled on this node only (required unless --cleanup)")
	fs.StringVar(&o.prefix, "chain-prefix", "NSL-NP", "prefix of every iptables chain this enforcer owns")
	fs.DurationVar(&o.resync, "resync", 30*time.Second, "re-apply the ruleset this often even without changes")
	fs.BoolVar(&o.once, "once", false, "compute and apply once, then exit (rules stay)")
	fs.BoolVar(&o.cleanup, "cleanup", false, "remove our chains and our FORWARD jump, then exit")
	fs.StringVar(&o.restore, "iptables-restore", "iptables-restore", "iptables-restore binary")
	fs.StringVar(&o.iptables, "iptables", "iptables", "iptables binary")
	fs.BoolVar(&o.verbose, "v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if err := validatePrefix(o.prefix); err != nil {
		return o, err
	}
	if !o.cleanup && o.node == "" {
		return o, errors.New("--node is required")
	}
	if o.resync <= 0 {
		return o, errors.New("--resync must be positive")
	}
	return o, nil
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	o, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "netpol-enforcer:", err)
		return 2
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ipt, err := newIPTables(o)
	if err != nil {
		log.Error("iptables not usable", "err", err)
		return 1
	}
	if o.cleanup {
		return doCleanup(ipt, log)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = enforce(ctx, o, ipt, log)
	if ctx.Err() != nil {
		err = nil // stopped by a signal: not a failure
	}
	if err != nil {
		log.Error("enforcer failed", "err", err)
	}
	if o.once && err != nil {
		return 1 // leave whatever a long-running instance applied
	}
	if o.once && ctx.Err() == nil {
		return 0
	}
	// Remove our rules whether we stopped on a signal or on an error.
	if rc := doCleanup(ipt, log); rc != 0 || err != nil {
		return 1
	}
	return 0
}

func newIPTables(o options) (*IPTables, error) {
	restore, err := exec.LookPath(o.restore)
	if err != nil {
		return nil, err
	}
	cmd, err := exec.LookPath(o.iptables)
	if err != nil {
		return nil, err
	}
	return &IPTables{Restore: restore, Cmd: cmd, Prefix: o.prefix}, nil
}

func enforce(ctx context.Context, o options, ipt *IPTables, log *slog.Logger) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.UserAgent = "netsleuth-lab-netpol-enforcer"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("build client: %w", err)
	}
	c, err := newController(cs, o.node, o.prefix, o.resync, ipt, log)
	if err != nil {
		return err
	}
	log.Info("starting", "node", o.node, "prefix", o.prefix, "apiserver", cfg.Host, "once", o.once)
	if o.once {
		// Never hang a harness: give up if the API server is unreachable.
		ctx, cancel := context.WithTimeout(ctx, onceTimeout)
		defer cancel()
		if err := c.start(ctx); err != nil {
			return err
		}
		return c.sync(ctx, true)
	}
	if err := c.start(ctx); err != nil {
		return err
	}
	return c.run(ctx)
}

// doCleanup runs on a fresh context so it still works after a signal.
func doCleanup(ipt *IPTables, log *slog.Logger) int {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	if err := ipt.Cleanup(ctx); err != nil {
		log.Error("cleanup failed", "err", err)
		return 1
	}
	log.Info("rules removed", "prefix", ipt.Prefix, "took", time.Since(start).Round(time.Millisecond))
	return 0
}
