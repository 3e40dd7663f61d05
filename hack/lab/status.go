package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// healthy reports whether every lab process runs and the nodes are Ready.
func (l *lab) healthy(ctx context.Context) bool {
	for _, name := range l.expectedProcs() {
		if _, ok := l.alive(name); !ok && !l.faultStopped(name) {
			return false
		}
	}
	cs, err := l.client()
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ok, err := nodesReady(ctx, cs)
	return err == nil && ok
}

func (l *lab) expectedProcs() []string {
	names := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
	for _, n := range nodes {
		names = append(names, "containerd-"+n.Name, "kubelet-"+n.Name, "kube-proxy-"+n.Name)
	}
	names = append(names, procNamesOf(l.enforcerProcs())...)
	return append(names, "external-host", "upstream-dns")
}

func (l *lab) status(ctx context.Context) error {
	fmt.Printf("lab state: %s\n", l.p.Lab)
	fmt.Printf("profile: %s\n", l.profileText())
	for _, name := range l.expectedProcs() {
		pid, ok := l.alive(name)
		state := "running"
		switch {
		case ok && stopped(pid):
			state = "frozen by a fault"
		case !ok && l.faultStopped(name):
			state = "stopped by a fault"
		case !ok:
			state = "not running"
		}
		fmt.Printf("  %-28s %-20s pid %d\n", name, state, pid)
	}
	var faults []string
	for name, f := range l.s.Faults {
		faults = append(faults, strings.TrimSpace(fmt.Sprintf("%s %s %s", name, f.Node, f.Set)))
	}
	sort.Strings(faults)
	fmt.Printf("active faults: %s\n", orNone(faults))
	if l.healthy(ctx) {
		fmt.Printf("cluster: up, nodes Ready; KUBECONFIG=%s\n", l.p.Kubeconfig())
		return nil
	}
	fmt.Println("cluster: not healthy (run 'go run ./hack/lab up')")
	return fmt.Errorf("lab is not up")
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}

// checkClean lists anything of the lab's left on the machine: processes,
// namespaces, links, mounts, iptables chains, routes and cgroups.
func (l *lab) checkClean(ctx context.Context) error {
	var left []string
	for _, name := range l.procNames() {
		if pid, ok := l.alive(name); ok {
			left = append(left, fmt.Sprintf("process %s (pid %d)", name, pid))
		}
	}
	for _, pid := range l.containerPIDs() {
		left = append(left, fmt.Sprintf("container or shim process pid %d", pid))
	}
	for _, ns := range labNetNS {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			left = append(left, "network namespace "+ns)
		}
	}
	if out, err := run(ctx, "ip", "-o", "link", "show"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 1 && (strings.HasPrefix(f[1], "nsl-") || strings.HasPrefix(f[1], "cali")) {
				left = append(left, "link "+strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"))
			}
		}
	}
	for _, m := range l.labMounts() {
		left = append(left, "mount "+m)
	}
	for _, fam := range []string{"iptables", "ip6tables"} {
		if out, err := run(ctx, fam+"-save"); err == nil {
			for table := range filterTables(out) {
				left = append(left, fmt.Sprintf("%s chains or rules in table %s", fam, table))
			}
		}
	}
	for _, s := range calicoIPSets(ctx, "") {
		left = append(left, "ipset "+s)
	}
	for _, c := range guardedCIDRs {
		if out, _ := run(ctx, "ip", "route", "show", c.String()); strings.TrimSpace(out) != "" {
			left = append(left, "route "+strings.TrimSpace(out))
		}
	}
	for _, n := range nodes {
		if _, err := os.Stat("/sys/fs/cgroup/pids/" + n.Name); err == nil {
			left = append(left, "cgroup "+n.Name)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("left behind on this machine:\n  %s", strings.Join(left, "\n  "))
	}
	fmt.Println("clean: no lab process, namespace, link, mount, iptables chain, ipset, route or cgroup is left")
	return nil
}

// profileText names the profile and what it runs.
func (l *lab) profileText() string {
	if l.calico() {
		return fmt.Sprintf("calico (Calico %s: its CNI plugin attaches pods, felix enforces NetworkPolicy)", calicoVersion)
	}
	return "bridge (bridge CNI, the lab's NetworkPolicy enforcer)"
}

// stopped reports whether process pid is stopped by a signal (SIGSTOP).
func stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'T'
}
