package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ourChainPrefixes name the iptables chains the lab's processes create: the
// lab's own (NSL-), kubelet's and kube-proxy's (KUBE-), the CNI plugins'
// (CNI-) and felix's in the calico profile (cali-). up refuses to start when
// the host already has such chains it did not make, so removing them here
// removes only the lab's.
var ourChainPrefixes = []string{"NSL-", "KUBE-", "CNI-", "cali-"}

var labNetNS = []string{nodes[1].NetNS, routerNS, externalNS, upstreamNS}

// stopOrder stops the lab's processes dependents first.
func (l *lab) stopOrder() []string {
	var order []string
	for _, n := range nodes {
		order = append(order, "felix-"+n.Name)
	}
	for _, n := range nodes {
		order = append(order, "netpol-enforcer-"+n.Name, "kube-proxy-"+n.Name, "kubelet-"+n.Name)
	}
	order = append(order, "external-host", "upstream-dns")
	return order
}

// down stops everything the lab started and removes what it created, then
// restores the host settings it changed. It keeps going past errors and
// reports them all at the end.
func (l *lab) down(ctx context.Context) error {
	var errs []error
	for _, name := range l.stopOrder() {
		l.stop(name, 5*time.Second)
	}
	l.killContainers()
	for _, n := range nodes {
		l.stop("containerd-"+n.Name, 5*time.Second)
	}
	for _, name := range []string{"kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		l.stop(name, 5*time.Second)
	}
	for _, name := range l.procNames() { // anything started by a newer lab version
		l.stop(name, 5*time.Second)
	}
	errs = append(errs, l.unmountAll())
	for _, ns := range labNetNS {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			_, err := run(ctx, "ip", "netns", "del", ns)
			errs = append(errs, err)
		}
	}
	errs = append(errs, l.removeHostNetwork(ctx))
	errs = append(errs, cleanIptables(ctx))
	// felix's ipsets on the host (node 1); node 2's went with its namespace.
	errs = append(errs, destroyIPSets(ctx, ""))
	for k, v := range l.s.Sysctls {
		if v != "" {
			_, err := run(ctx, "sysctl", "-qw", k+"="+v)
			errs = append(errs, err)
		}
	}
	errs = append(errs, l.removeCgroups(), l.removeFiles())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("teardown incomplete: %w", err)
	}
	step("lab down: nothing of it is left running")
	return nil
}

// killContainers ends the container processes (in the nodes' cgroups) and
// containerd's shims for the lab's sockets; neither dies with containerd.
func (l *lab) killContainers() {
	for i := 0; i < 3; i++ {
		pids := l.containerPIDs()
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (l *lab) containerPIDs() []int {
	seen := map[int]bool{}
	for _, n := range nodes {
		_ = filepath.WalkDir(filepath.Join("/sys/fs/cgroup/pids", n.Name), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	for _, pid := range l.pidsReferencing(l.p.Run) {
		seen[pid] = true
	}
	var out []int
	for pid := range seen {
		if pid != os.Getpid() {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// pidsReferencing lists processes whose command line mentions path (the
// containerd shims carry the lab's socket path).
func (l *lab) pidsReferencing(path string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), path) {
			out = append(out, pid)
		}
	}
	return out
}

// labMounts lists mount points under the lab's directories, deepest first.
func (l *lab) labMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if within(mp, l.p.Lab) || within(mp, l.p.Run) {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

func (l *lab) unmountAll() error {
	for i := 0; i < 3; i++ {
		mounts := l.labMounts()
		if len(mounts) == 0 {
			return nil
		}
		for _, m := range mounts {
			if err := syscall.Unmount(m, 0); err != nil {
				_ = syscall.Unmount(m, syscall.MNT_DETACH)
			}
		}
	}
	if left := l.labMounts(); len(left) > 0 {
		return fmt.Errorf("mounts still present: %s", strings.Join(left, ", "))
	}
	return nil
}

func (l *lab) removeHostNetwork(ctx context.Context) error {
	var errs []error
	// Pod veths on the host hang off the CNI bridge; the netns mounts are gone,
	// so the kernel removes them with the namespaces. The bridges are ours.
	for _, link := range []string{cniBridge, nodeBridge, svcSink, nodeLocalLink} {
		if _, err := run(ctx, "ip", "link", "show", link); err == nil {
			_, err := run(ctx, "ip", "link", "del", link)
			errs = append(errs, err)
		}
	}
	for _, c := range guardedCIDRs {
		if _, err := run(ctx, "ip", "route", "show", "type", "unreachable", c.String()); err == nil {
			_, _ = run(ctx, "ip", "route", "del", "unreachable", c.String(), "metric", guardMetric)
		}
	}
	return errors.Join(errs...)
}

// cleanIptables removes the lab's chains and every rule that jumps to them,
// from every table, for IPv4 and IPv6, leaving everyone else's rules intact.
func cleanIptables(ctx context.Context) error {
	var errs []error
	for _, fam := range []string{"iptables", "ip6tables"} {
		out, err := run(ctx, fam+"-save")
		if err != nil {
			continue // no such family here
		}
		for table, body := range filterTables(out) {
			errs = append(errs, restoreFamily(ctx, "", fam, table, body))
		}
	}
	return errors.Join(errs...)
}

// restoreTable replaces one IPv4 table in namespace ns with body.
func restoreTable(ctx context.Context, ns, table, body string) error {
	return restoreFamily(ctx, ns, "iptables", table, body)
}

func restoreFamily(ctx context.Context, ns, fam, table, body string) error {
	f, err := os.CreateTemp("", "nsl-restore-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, _ = f.WriteString(body)
	f.Close()
	_, err = inNS(ctx, ns, "sh", "-c", fmt.Sprintf("%s-restore -T %s < %s", fam, table, f.Name()))
	return err
}

// filterTables takes iptables-save output and returns, for each table that
// holds something of the lab's, that table without it.
func filterTables(save string) map[string]string { return filterTablesBy(save, isOurs) }

// filterTablesBy returns, for each table of an iptables-save dump with a
// line drop matches, that table without those lines.
func filterTablesBy(save string, drop func(string) bool) map[string]string {
	out := map[string]string{}
	var table string
	var b strings.Builder
	touched := false
	for _, line := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table, touched = line[1:], false
			b.Reset()
			b.WriteString(line + "\n")
		case line == "COMMIT":
			b.WriteString("COMMIT\n")
			if touched {
				out[table] = b.String()
			}
		case drop(line):
			touched = true
		case strings.HasPrefix(line, ":") || strings.HasPrefix(line, "-A"):
			b.WriteString(line + "\n")
		}
	}
	return out
}

func isOurs(line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 {
		return false
	}
	if strings.HasPrefix(f[0], ":") && hasOurPrefix(f[0][1:]) {
		return true
	}
	if f[0] != "-A" || len(f) < 2 {
		return false
	}
	if hasOurPrefix(f[1]) || strings.Contains(line, guardComment) || namesLabNet(f) || isFelix(line) {
		return true
	}
	for i := 2; i+1 < len(f); i++ {
		if (f[i] == "-j" || f[i] == "-g") && hasOurPrefix(f[i+1]) {
			return true
		}
	}
	return false
}

// namesLabNet reports a rule whose -s or -d lies in the lab's address space:
// the lab's own or one a test added (a netsleuth fix proven on the lab).
// Nothing else on the machine uses these networks (up guards them).
func namesLabNet(f []string) bool {
	for i := 2; i+1 < len(f); i++ {
		if f[i] != "-s" && f[i] != "-d" {
			continue
		}
		p, err := netip.ParsePrefix(f[i+1])
		if err != nil {
			a, aerr := netip.ParseAddr(f[i+1])
			if aerr != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		for _, lab := range []netip.Prefix{podCIDR, serviceCIDR, nodeNet, externalNet} {
			if lab.Overlaps(p) && p.Bits() >= lab.Bits() {
				return true
			}
		}
	}
	return false
}

func hasOurPrefix(chain string) bool {
	for _, p := range ourChainPrefixes {
		if strings.HasPrefix(chain, p) {
			return true
		}
	}
	return false
}

// removeCgroups removes the nodes' cgroup trees, deepest first.
func (l *lab) removeCgroups() error {
	hier, _ := os.ReadDir("/sys/fs/cgroup")
	var errs []error
	for _, n := range nodes {
		for _, h := range hier {
			root := filepath.Join("/sys/fs/cgroup", h.Name(), n.Name)
			var dirs []string
			_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, path)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// removeFiles deletes the lab's runtime data, keeping the PKI, the logs and
// the built programs for the next start. It refuses while anything is still
// mounted below, so a bind mount can never take host files with it.
func (l *lab) removeFiles() error {
	if left := l.labMounts(); len(left) > 0 {
		return fmt.Errorf("not removing lab data: still mounted: %s", strings.Join(left, ", "))
	}
	var errs []error
	for _, p := range []string{filepath.Join(l.p.Lab, "nodes"), filepath.Join(l.p.Lab, "etcd"), filepath.Join(l.p.Lab, "pids"), l.p.Run, l.p.State()} {
		errs = append(errs, os.RemoveAll(p))
	}
	kcs, _ := filepath.Glob(filepath.Join(l.p.Lab, "*kubeconfig"))
	for _, k := range kcs {
		errs = append(errs, os.Remove(k))
	}
	l.s = state{Sysctls: map[string]string{}, Faults: map[string]fault{}}
	return errors.Join(errs...)
}
