package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// faultDef is one fault the lab can inject and undo, each a real cause of a
// network failure that a netsleuth probe must diagnose.
type faultDef struct {
	about   string
	inject  func(context.Context, *lab, node, string) error
	restore func(context.Context, *lab, node, string) error
	stops   func(*lab, node) []string // processes the fault stops on purpose
}

var faults = map[string]faultDef{
	"snat": {
		about: "drop the node's MASQUERADE rule for pod traffic to the external subnet (seed 003); calico profile: natOutgoing off in the node's IPPool",
		inject: func(ctx context.Context, l *lab, n node, _ string) error {
			if l.calico() {
				return l.setNATOutgoing(ctx, n, false)
			}
			return installChain(ctx, n.NetNS, "nat", natChain, []string{"POSTROUTING"}, nil)
		},
		restore: func(ctx context.Context, l *lab, n node, _ string) error {
			if l.calico() {
				return l.setNATOutgoing(ctx, n, true)
			}
			return installChain(ctx, n.NetNS, "nat", natChain, []string{"POSTROUTING"}, snatRules())
		},
	},
	"ip-forward": {
		about:   "set net.ipv4.ip_forward=0 on the node (the bridge CNI sets it back to 1 when it attaches the next pod there: create pods first)",
		inject:  sysctlFault("net.ipv4.ip_forward=0"),
		restore: sysctlFault("net.ipv4.ip_forward=1"),
	},
	"node-route": {
		about: "delete the node's static route to the external subnet",
		inject: func(ctx context.Context, l *lab, n node, _ string) error {
			_, err := inNS(ctx, n.NetNS, "ip", "route", "del", externalNet.String(), "via", routerIP.String())
			return err
		},
		restore: func(ctx context.Context, l *lab, n node, _ string) error {
			_, err := inNS(ctx, n.NetNS, "ip", "route", "replace", externalNet.String(), "via", routerIP.String())
			return err
		},
	},
	"kube-proxy": {
		about: "stop kube-proxy on the node and remove its rules (Services and DNS die there)",
		inject: func(ctx context.Context, l *lab, n node, _ string) error {
			l.stop("kube-proxy-"+n.Name, 5*time.Second)
			_, err := inNS(ctx, n.NetNS, l.kubeBin("kube-proxy"), "--cleanup", "--config="+l.p.Node(n.Name, "kube-proxy.yaml"))
			return err
		},
		restore: func(ctx context.Context, l *lab, n node, _ string) error { return l.start(l.kubeProxyProc(n)) },
		stops:   func(_ *lab, n node) []string { return []string{"kube-proxy-" + n.Name} },
	},
	"coredns-zero": {
		about:   "scale the CoreDNS Deployment to 0 replicas",
		inject:  scaleCoreDNS(0),
		restore: scaleCoreDNS(2),
	},
	"kubelet-config": {
		about: "restart the node's kubelet with one config field changed (--set field=value)",
		inject: func(ctx context.Context, l *lab, n node, _ string) error {
			return l.restartKubelet(ctx, n)
		},
		restore: func(ctx context.Context, l *lab, n node, _ string) error {
			return l.restartKubelet(ctx, n)
		},
	},
	"enforcer": {
		about: "stop the NetworkPolicy enforcer on every node, its rules removed (no enforcer at all; calico profile: felix and its chains and ipsets)",
		inject: func(ctx context.Context, l *lab, _ node, _ string) error {
			for _, p := range l.enforcerProcs() {
				l.stop(p.Name, 5*time.Second)
			}
			if !l.calico() {
				return nil // the lab's enforcer removes its rules when it stops
			}
			for _, n := range nodes {
				if err := removeFelixState(ctx, n.NetNS); err != nil {
					return err
				}
			}
			return nil
		},
		restore: func(ctx context.Context, l *lab, _ node, _ string) error {
			for _, p := range l.enforcerProcs() {
				if err := l.start(p); err != nil {
					return err
				}
			}
			if l.calico() {
				return l.waitFelix(ctx)
			}
			return nil
		},
		stops: func(l *lab, _ node) []string { return procNamesOf(l.enforcerProcs()) },
	},
	"enforcer-stale": {
		about: "freeze the NetworkPolicy enforcer on every node (SIGSTOP): running, its rules left as they were, nothing new programmed (calico profile: felix, its health endpoint silent)",
		inject: func(ctx context.Context, l *lab, _ node, _ string) error {
			return l.signalEnforcers(ctx, "STOP")
		},
		restore: func(ctx context.Context, l *lab, _ node, _ string) error {
			if err := l.signalEnforcers(ctx, "CONT"); err != nil {
				return err
			}
			if l.calico() {
				return l.waitFelix(ctx)
			}
			return nil
		},
	},
	"nodelocal": {
		about:   "a mode, not a fault: run the NodeLocal DNS cache on every node (169.254.20.10) and point kubelet clusterDNS at it ('nodelocal on|off' does the same)",
		inject:  func(ctx context.Context, l *lab, _ node, _ string) error { return l.nodeLocal(ctx, true) },
		restore: func(ctx context.Context, l *lab, _ node, _ string) error { return l.nodeLocal(ctx, false) },
	},
	"apiserver-restart": {
		about: "stop kube-apiserver and start it again at once, waiting until it is ready and the controllers have caught up (every client's connections break); unfault only makes sure it runs and they caught up",
		inject: func(ctx context.Context, l *lab, _ node, _ string) error {
			l.stop("kube-apiserver", 10*time.Second)
			return l.apiServerBack(ctx)
		},
		restore: func(ctx context.Context, l *lab, _ node, _ string) error { return l.apiServerBack(ctx) },
	},
	"kubelet-stop": {
		about: "stop the node's kubelet (exec and logs there fail at once; the node goes NotReady after the controller's grace period); unfault starts it and waits until the node is Ready",
		inject: func(ctx context.Context, l *lab, n node, _ string) error {
			l.stop("kubelet-"+n.Name, 5*time.Second)
			return nil
		},
		restore: func(ctx context.Context, l *lab, n node, _ string) error {
			since := time.Now()
			if err := l.start(l.kubeletProc(n)); err != nil {
				return err
			}
			return l.waitKubelet(ctx, n, since)
		},
		stops: func(_ *lab, n node) []string { return []string{"kubelet-" + n.Name} },
	},
	"external-host": {
		about: "stop the external host's listeners (the target itself is down)",
		inject: func(ctx context.Context, l *lab, _ node, _ string) error {
			l.stop("external-host", 5*time.Second)
			return nil
		},
		restore: func(ctx context.Context, l *lab, _ node, _ string) error { return l.start(l.hostProcs()[0]) },
		stops:   func(*lab, node) []string { return []string{"external-host"} },
	},
}

func sysctlFault(kv string) func(context.Context, *lab, node, string) error {
	return func(ctx context.Context, l *lab, n node, _ string) error {
		_, err := inNS(ctx, n.NetNS, "sysctl", "-qw", kv)
		return err
	}
}

func scaleCoreDNS(replicas int32) func(context.Context, *lab, node, string) error {
	return func(ctx context.Context, l *lab, _ node, _ string) error {
		cs, err := l.client()
		if err != nil {
			return err
		}
		sc, err := cs.AppsV1().Deployments("kube-system").GetScale(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			return err
		}
		sc.Spec.Replicas = replicas
		if _, err := cs.AppsV1().Deployments("kube-system").UpdateScale(ctx, "coredns", sc, metav1.UpdateOptions{}); err != nil {
			return err
		}
		if replicas == 0 {
			return waitFor(ctx, "CoreDNS pods gone", 60*time.Second, func(ctx context.Context) (bool, error) {
				pods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
				return err == nil && len(pods.Items) == 0, err
			})
		}
		return waitFor(ctx, "CoreDNS ready", 60*time.Second, deploymentReady("kube-system", "coredns", cs))
	}
}

// restartKubelet rewrites the node's kubelet config (with the active
// kubelet-config fault's override, if any) and restarts kubelet, waiting
// until the node reports Ready again.
func (l *lab) restartKubelet(ctx context.Context, n node) error {
	if err := l.writeKubeletConfig(n); err != nil {
		return err
	}
	since := time.Now()
	l.stop("kubelet-"+n.Name, 5*time.Second)
	if err := l.start(l.kubeletProc(n)); err != nil {
		return err
	}
	return l.waitKubelet(ctx, n, since)
}

// waitKubelet waits until the node's kubelet, restarted at since, serves
// configz and has itself reported the node Ready, and every node is Ready.
// A Ready condition from before since is the old kubelet's: a new kubelet
// reports NotReady for its first seconds (runtime and network checks), so
// trusting the old condition let tests start on a node about to go NotReady.
func (l *lab) waitKubelet(ctx context.Context, n node, since time.Time) error {
	cs, err := l.client()
	if err != nil {
		return err
	}
	// configz answering through the API server proves the new kubelet serves;
	// the old process is gone, so no stale answer can pass.
	return waitFor(ctx, "kubelet on "+n.Name+" back and serving", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/" + n.Name + "/proxy/configz").DoRaw(ctx)
		if err != nil {
			return false, err
		}
		node, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		fresh := time.Since(since) > 20*time.Second // a kubelet with nothing to report may not post at once
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Time.Before(since.Truncate(time.Second)) {
				fresh = true
			}
		}
		if !fresh {
			return false, nil
		}
		return nodesReady(ctx, cs)
	})
}

// nodeLocal switches the NodeLocal DNS cache on or off: the link-local
// address on a port-less bridge in every node, the node-local-dns DaemonSet,
// and every kubelet restarted with clusterDNS pointing at it (or back).
func (l *lab) nodeLocal(ctx context.Context, on bool) error {
	cs, err := l.client()
	if err != nil {
		return err
	}
	doc, err := render("nodelocaldns.yaml")
	if err != nil {
		return err
	}
	if on {
		for _, n := range nodes {
			if err := ensureBridge(ctx, n.NetNS, nodeLocalLink); err != nil {
				return err
			}
			if _, err := inNS(ctx, n.NetNS, "ip", "addr", "replace", nodeLocalDNS.String()+"/32", "dev", nodeLocalLink); err != nil {
				return err
			}
		}
		if err := apply(ctx, cs, doc); err != nil {
			return err
		}
		if err := waitFor(ctx, "node-local-dns ready on every node", 60*time.Second, daemonSetReady("kube-system", "node-local-dns", cs)); err != nil {
			return err
		}
	} else {
		if err := remove(ctx, cs, doc); err != nil {
			return err
		}
		for _, n := range nodes {
			if _, err := inNS(ctx, n.NetNS, "ip", "link", "show", nodeLocalLink); err == nil {
				if _, err := inNS(ctx, n.NetNS, "ip", "link", "del", nodeLocalLink); err != nil {
					return err
				}
			}
		}
	}
	for _, n := range nodes {
		if err := l.restartKubelet(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (l *lab) fault(ctx context.Context, name, nodeName, set string) error {
	def, ok := faults[name]
	if !ok {
		return usageError{fmt.Sprintf("unknown fault %q (see 'faults')", name)}
	}
	n, err := findNode(nodeName)
	if err != nil {
		return usageError{err.Error()}
	}
	if name == "kubelet-config" && !strings.Contains(set, "=") {
		return usageError{"kubelet-config needs --set field=value"}
	}
	if _, active := l.s.Faults[name]; active {
		return fmt.Errorf("fault %s is already active: unfault it first", name)
	}
	l.s.Faults[name] = fault{Node: n.Name, Set: set}
	if err := l.save(); err != nil {
		return err
	}
	if err := def.inject(ctx, l, n, set); err != nil {
		return fmt.Errorf("inject %s: %w", name, err)
	}
	step("fault %s active on %s", name, n.Name)
	return nil
}

func (l *lab) unfault(ctx context.Context, name string) error {
	names := []string{name}
	if name == "all" {
		names = names[:0]
		for k := range l.s.Faults {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	for _, nm := range names {
		f, ok := l.s.Faults[nm]
		if !ok {
			return fmt.Errorf("fault %s is not active", nm)
		}
		n, err := findNode(f.Node)
		if err != nil {
			return err
		}
		delete(l.s.Faults, nm)
		if err := l.save(); err != nil {
			return err
		}
		if err := faults[nm].restore(ctx, l, n, f.Set); err != nil {
			return fmt.Errorf("undo %s: %w", nm, err)
		}
		step("fault %s undone on %s", nm, n.Name)
	}
	return nil
}

// faultStopped reports whether an active fault stopped process name on purpose.
func (l *lab) faultStopped(name string) bool {
	for fname, f := range l.s.Faults {
		def := faults[fname]
		if def.stops == nil {
			continue
		}
		n, _ := findNode(f.Node)
		for _, p := range def.stops(l, n) {
			if p == name {
				return true
			}
		}
	}
	return false
}

func printFaults() {
	var names []string
	for n := range faults {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("  %-15s %s\n", n, faults[n].about)
	}
}

func procNamesOf(ps []proc) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// signalEnforcers sends sig (a name kill takes) to the enforcer on every node.
func (l *lab) signalEnforcers(ctx context.Context, sig string) error {
	for _, p := range l.enforcerProcs() {
		pid, ok := l.alive(p.Name)
		if !ok {
			return fmt.Errorf("%s is not running", p.Name)
		}
		if _, err := run(ctx, "kill", "-"+sig, strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// apiServerBack starts kube-apiserver if it is not running and waits until
// it is ready and the controllers have caught up with it.
func (l *lab) apiServerBack(ctx context.Context) error {
	if err := l.startAPIServer(ctx); err != nil {
		return err
	}
	return l.waitControllers(ctx)
}

// waitControllers waits until kube-controller-manager acts on new objects
// again after an API server restart (its watches reconnect with a back-off
// of up to 30 s): a new namespace gets its default ServiceAccount. The
// next test then starts on a cluster that has caught up.
func (l *lab) waitControllers(ctx context.Context) error {
	cs, err := l.client()
	if err != nil {
		return err
	}
	ns := fmt.Sprintf("nsl-canary-%d", time.Now().UnixNano()%1e9)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating canary namespace %s: %w", ns, err)
	}
	defer func() {
		_ = cs.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), ns, metav1.DeleteOptions{})
	}()
	return waitFor(ctx, "kube-controller-manager caught up (a new namespace gets its default ServiceAccount)", 90*time.Second, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}
