package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// guardedCIDRs get a low-priority unreachable route on the host before
// anything starts: the lab's more specific routes win, and nothing addressed
// to them can leave through the default gateway. The Service CIDR is routed
// into a port-less bridge instead (an unreachable route would break
// host→ClusterIP, whose route lookup happens before kube-proxy's DNAT).
var guardedCIDRs = []netip.Prefix{podCIDR, nodeNet, externalNet}

const guardMetric = "4000"

// uplinks are the host's interfaces that carry a default route: the lab only
// names them in DROP rules and never changes them.
func uplinks(ctx context.Context) ([]string, error) {
	out, err := run(ctx, "ip", "-4", "route", "show", "default")
	if err != nil {
		return nil, err
	}
	var devs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "dev" && !strings.HasPrefix(f[i+1], "nsl-") {
				devs = append(devs, f[i+1])
			}
		}
	}
	return devs, nil
}

// setupGuards installs the leak guards: unreachable routes, the Service CIDR
// sink, and DROP rules (filter FORWARD and mangle, so a CNI that inserts its
// own rules above ours cannot bypass them) for lab sources leaving through an
// uplink and for pods addressing the cloud metadata service.
func (l *lab) setupGuards(ctx context.Context) error {
	step("installing leak guards (unreachable routes, Service CIDR sink, uplink drops)")
	for _, c := range guardedCIDRs {
		if _, err := run(ctx, "ip", "route", "replace", "unreachable", c.String(), "metric", guardMetric); err != nil {
			return err
		}
	}
	if err := ensureBridge(ctx, "", svcSink); err != nil {
		return err
	}
	if _, err := run(ctx, "ip", "route", "replace", serviceCIDR.String(), "dev", svcSink); err != nil {
		return err
	}
	ups, err := uplinks(ctx)
	if err != nil {
		return err
	}
	var filter, mangle []string
	for _, up := range ups {
		for _, c := range []netip.Prefix{podCIDR, nodeNet, externalNet} {
			filter = append(filter, fmt.Sprintf("-A %s -s %s -o %s -j DROP", guardChain, c, up))
			mangle = append(mangle, fmt.Sprintf("-A %s -s %s -o %s -j DROP", guardChain, c, up))
		}
	}
	mangle = append(mangle, fmt.Sprintf("-A %s -s %s -d 169.254.169.254/32 -j DROP", guardChain, podCIDR))
	if err := installChain(ctx, "", "filter", guardChain, []string{"FORWARD"}, filter); err != nil {
		return err
	}
	return installChain(ctx, "", "mangle", guardChain, []string{"PREROUTING", "POSTROUTING"}, mangle)
}

// installChain (re)creates chain in table with rules and makes sure each hook
// chain jumps to it first.
func installChain(ctx context.Context, ns, table, chain string, hooks, rules []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s\n:%s - [0:0]\n-F %s\n", table, chain, chain)
	for _, r := range rules {
		b.WriteString(r + "\n")
	}
	b.WriteString("COMMIT\n")
	if err := restore(ctx, ns, b.String()); err != nil {
		return fmt.Errorf("install %s/%s: %w", table, chain, err)
	}
	for _, h := range hooks {
		jump := []string{"-t", table, "-C", h, "-j", chain, "-m", "comment", "--comment", guardComment}
		if _, err := inNS(ctx, ns, "iptables", jump...); err == nil {
			continue
		}
		jump[2] = "-I"
		jump = append(jump[:4], append([]string{"1"}, jump[4:]...)...)
		if _, err := inNS(ctx, ns, "iptables", jump...); err != nil {
			return err
		}
	}
	return nil
}

func restore(ctx context.Context, ns, rules string) error {
	f, err := os.CreateTemp("", "nsl-iptables-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(rules); err != nil {
		return err
	}
	f.Close()
	_, err = inNS(ctx, ns, "sh", "-c", "iptables-restore --noflush < "+f.Name())
	return err
}

func ensureBridge(ctx context.Context, ns, name string) error {
	if _, err := inNS(ctx, ns, "ip", "link", "show", name); err != nil {
		if _, err := inNS(ctx, ns, "ip", "link", "add", name, "type", "bridge"); err != nil {
			return err
		}
	}
	_, err := inNS(ctx, ns, "ip", "link", "set", name, "up")
	return err
}

func ensureNetNS(ctx context.Context, name string) error {
	if _, err := os.Stat("/run/netns/" + name); err == nil {
		return nil
	}
	_, err := run(ctx, "ip", "netns", "add", name)
	return err
}

// attach creates a veth from the host bridge into namespace ns (named eth0
// there, hostSide on the host) and addresses it.
func attach(ctx context.Context, ns, hostSide string, addr netip.Prefix, gw netip.Addr) error {
	if _, err := run(ctx, "ip", "link", "show", hostSide); err != nil {
		if _, err := run(ctx, "ip", "link", "add", hostSide, "type", "veth", "peer", "name", "eth0", "netns", ns); err != nil {
			return err
		}
	}
	cmds := [][]string{
		{"ip", "link", "set", hostSide, "master", nodeBridge, "up"},
	}
	for _, c := range cmds {
		if _, err := run(ctx, c[0], c[1:]...); err != nil {
			return err
		}
	}
	nsCmds := [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "replace", addr.String(), "dev", "eth0"},
		{"ip", "link", "set", "eth0", "up"},
	}
	if gw.IsValid() {
		nsCmds = append(nsCmds, []string{"ip", "route", "replace", "default", "via", gw.String()})
	}
	for _, c := range nsCmds {
		if _, err := inNS(ctx, ns, c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// setupNetwork builds the node network, the second node's namespace, the
// router and external host of seed 003, and the lab's upstream DNS host.
func (l *lab) setupNetwork(ctx context.Context) error {
	step("building the lab network (%s on %s, node namespaces, router, external subnet %s)", nodeNet, nodeBridge, externalNet)
	if err := ensureBridge(ctx, "", nodeBridge); err != nil {
		return err
	}
	if _, err := run(ctx, "ip", "addr", "replace", prefixOf(nodes[0].IP, nodeNet), "dev", nodeBridge); err != nil {
		return err
	}
	for _, n := range nodes[1:] {
		if err := ensureNetNS(ctx, n.NetNS); err != nil {
			return err
		}
		if err := attach(ctx, n.NetNS, "nsl-"+strings.TrimPrefix(n.NetNS, "nsl-"), netip.MustParsePrefix(prefixOf(n.IP, nodeNet)), netip.Addr{}); err != nil {
			return err
		}
		if err := ensureBridge(ctx, n.NetNS, svcSink); err != nil {
			return err
		}
		if _, err := inNS(ctx, n.NetNS, "ip", "route", "replace", serviceCIDR.String(), "dev", svcSink); err != nil {
			return err
		}
	}
	if err := l.setupRouter(ctx); err != nil {
		return err
	}
	for _, ns := range []string{upstreamNS} {
		if err := ensureNetNS(ctx, ns); err != nil {
			return err
		}
	}
	if err := attach(ctx, upstreamNS, "nsl-dns", netip.MustParsePrefix(prefixOf(upstreamDNS, nodeNet)), nodes[0].IP); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := l.setupNode(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (l *lab) setupRouter(ctx context.Context) error {
	for _, ns := range []string{routerNS, externalNS} {
		if err := ensureNetNS(ctx, ns); err != nil {
			return err
		}
	}
	if err := attach(ctx, routerNS, "nsl-rt", netip.MustParsePrefix(prefixOf(routerIP, nodeNet)), netip.Addr{}); err != nil {
		return err
	}
	if _, err := inNS(ctx, routerNS, "ip", "link", "show", "eth1"); err != nil {
		if _, err := run(ctx, "ip", "-n", routerNS, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", externalNS); err != nil {
			return err
		}
	}
	cmds := []struct {
		ns   string
		args []string
	}{
		{routerNS, []string{"ip", "addr", "replace", prefixOf(routerExtIP, externalNet), "dev", "eth1"}},
		{routerNS, []string{"ip", "link", "set", "eth1", "up"}},
		{routerNS, []string{"sysctl", "-qw", "net.ipv4.ip_forward=1"}},
		{externalNS, []string{"ip", "link", "set", "lo", "up"}},
		{externalNS, []string{"ip", "addr", "replace", prefixOf(externalHost, externalNet), "dev", "eth0"}},
		{externalNS, []string{"ip", "link", "set", "eth0", "up"}},
		{externalNS, []string{"ip", "route", "replace", "default", "via", routerExtIP.String()}},
	}
	for _, c := range cmds {
		if _, err := inNS(ctx, c.ns, c.args[0], c.args[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// setupNode gives a node what seed 003 says a working node has: forwarding on,
// bridged traffic through iptables, a static route to the external subnet and
// a MASQUERADE rule for pod traffic to it (in the calico profile, felix's
// from the natOutgoing IPPool).
func (l *lab) setupNode(ctx context.Context, n node) error {
	cmds := [][]string{
		{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"},
		{"ip", "route", "replace", externalNet.String(), "via", routerIP.String()},
	}
	for _, c := range cmds {
		if _, err := inNS(ctx, n.NetNS, c[0], c[1:]...); err != nil {
			return err
		}
	}
	if l.calico() {
		// Calico's natOutgoing IPPool masquerades (setupCalicoPools). Pods
		// reach their node through 169.254.1.1, which the node answers by
		// proxy ARP only when it has a route to that address: node 2's
		// namespace has no default route, so it gets one into its sink.
		if n.NetNS != "" {
			_, err := inNS(ctx, n.NetNS, "ip", "route", "replace", calicoGateway+"/32", "dev", svcSink)
			return err
		}
		return nil
	}
	return installChain(ctx, n.NetNS, "nat", natChain, []string{"POSTROUTING"}, snatRules())
}

func snatRules() []string {
	return []string{fmt.Sprintf("-A %s -s %s -d %s -j MASQUERADE", natChain, podCIDR, externalNet)}
}

// setupPodRoutes routes every node's pod CIDR via that node on every other
// node (the static routes a routed bridge CNI needs).
func (l *lab) setupPodRoutes(ctx context.Context, cidrs map[string]netip.Prefix) error {
	for _, from := range nodes {
		for _, to := range nodes {
			if from.Name == to.Name {
				continue
			}
			if _, err := inNS(ctx, from.NetNS, "ip", "route", "replace", cidrs[to.Name].String(), "via", to.IP.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

func prefixOf(a netip.Addr, p netip.Prefix) string {
	return netip.PrefixFrom(a, p.Bits()).String()
}

// readSysctl reads a host sysctl by its dotted name.
func readSysctl(name string) string {
	b, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
