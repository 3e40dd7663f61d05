package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// These tests never touch the host's ruleset or interfaces: every apply runs
// in a re-executed copy of the test binary inside a private network namespace
// (unshare -n), and that copy refuses to run in its parent's namespace.

const (
	helperEnv   = "NSL_NPT_HELPER"
	parentNSEnv = "NSL_NPT_PARENT_NETNS"
	nptPrefix   = "NSL-NPT"
)

func requireRootTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not available: %v", tool, err)
		}
	}
}

func netnsOf(pid string) string {
	s, _ := os.Readlink("/proc/" + pid + "/ns/net")
	return s
}

// TestRestoreTestAccepts checks that iptables-restore parses everything the
// renderer can produce. --test never commits; it also runs in a private
// network namespace so not even a read of the host ruleset happens.
func TestRestoreTestAccepts(t *testing.T) {
	requireRootTools(t, "iptables-restore", "unshare")
	rs := Render(fixtureInput(allFeaturePolicies()...))
	text := RestoreText(rs, nil)
	cmd := exec.Command("unshare", "-n", "iptables-restore", "--test", "--noflush")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables-restore --test rejected the ruleset: %v\n%s\n%s", err, out, text)
	}
}

// TestApplyInNetns runs the real apply/cleanup path, with real traffic,
// inside throwaway network namespaces.
func TestApplyInNetns(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("inside helper")
	}
	requireRootTools(t, "iptables-restore", "iptables", "unshare", "nsenter", "ip")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", os.Args[0], "-test.run=^TestNetnsHelper$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=apply", parentNSEnv+"="+netnsOf("self"))
	out, err := cmd.CombinedOutput()
	t.Logf("helper output:\n%s", out)
	if err != nil {
		t.Fatalf("netns helper failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestNetnsHelper") {
		t.Fatal("netns helper did not pass")
	}
}

// TestNetnsHelper is the body of the re-executed test binary.
func TestNetnsHelper(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("only runs re-executed inside a private network namespace")
	}
	if parent := os.Getenv(parentNSEnv); parent == "" || netnsOf("self") == parent {
		t.Fatalf("refusing to run: not in a private network namespace (self %s, parent %s)", netnsOf("self"), parent)
	}
	switch mode {
	case "apply":
		netnsApply(t)
	case "listen":
		listenForever(t)
	case "dial":
		c, err := net.DialTimeout("tcp", os.Getenv("NSL_NPT_ADDR"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}
}

func listenForever(t *testing.T) {
	for _, p := range []string{"8080", "8081"} {
		l, err := net.Listen("tcp", ":"+p)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_ = c.Close()
			}
		}()
	}
	select {}
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// endpoint starts a process in its own network namespace (a child of ours),
// wires it to us with a veth pair and returns its pid.
func endpoint(t *testing.T, name, ip, gw string, argv []string, env []string) string {
	t.Helper()
	cmd := exec.Command("unshare", append([]string{"-n"}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := strconv.Itoa(cmd.Process.Pid)
	for i := 0; netnsOf(pid) == netnsOf("self"); i++ {
		if i > 200 {
			t.Fatal("endpoint never entered its namespace")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sh(t, "ip", "link", "add", name, "type", "veth", "peer", "name", name+"p")
	sh(t, "ip", "link", "set", name+"p", "netns", pid)
	sh(t, "ip", "addr", "add", gw+"/24", "dev", name)
	sh(t, "ip", "link", "set", name, "up")
	in := []string{"nsenter", "-t", pid, "-n", "ip"}
	sh(t, append(in, "link", "set", "lo", "up")...)
	sh(t, append(in, "addr", "add", ip+"/24", "dev", name+"p")...)
	sh(t, append(in, "link", "set", name+"p", "up")...)
	sh(t, append(in, "route", "add", "default", "via", gw)...)
	return pid
}

// dial connects from the namespace of pid; retries only when want is true.
func dial(t *testing.T, pid, addr string, want bool) {
	t.Helper()
	tries := 1
	if want {
		tries = 20
	}
	var out []byte
	for range tries {
		cmd := exec.Command("nsenter", "-t", pid, "-n", os.Args[0], "-test.run=^TestNetnsHelper$")
		cmd.Env = append(os.Environ(), helperEnv+"=dial", parentNSEnv+"="+netnsOf("self"), "NSL_NPT_ADDR="+addr)
		var err error
		out, err = cmd.CombinedOutput()
		if (err == nil) == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("dial %s from pid %s: connected=%v, want %v\n%s", addr, pid, !want, want, out)
}

func netnsApply(t *testing.T) {
	ctx := context.Background()
	sh(t, "ip", "link", "set", "lo", "up")
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	self := netnsOf("self")
	client := endpoint(t, "npta", "10.244.1.10", "10.244.1.1", []string{"sleep", "120"}, nil)
	endpoint(t, "nptb", "10.244.2.20", "10.244.2.1",
		[]string{os.Args[0], "-test.run=^TestNetnsHelper$"}, []string{helperEnv + "=listen", parentNSEnv + "=" + self})
	dial(t, client, "10.244.2.20:8080", true)

	ipt := &IPTables{Restore: "iptables-restore", Cmd: "iptables", Prefix: nptPrefix}
	pods := []Pod{
		{Namespace: "default", Name: "web", Labels: map[string]string{"app": "web"}, IP: "10.244.2.20", Node: "n1",
			Ports: []ContainerPort{{Name: "http", Port: 8080, Protocol: "TCP"}}},
		{Namespace: "default", Name: "client", Labels: map[string]string{"app": "client"}, IP: "10.244.1.10", Node: "n2"},
	}
	apply := func(pols ...networkingv1.NetworkPolicy) Ruleset {
		t.Helper()
		rs := Render(Input{Node: "n1", Prefix: nptPrefix, Pods: pods, Namespaces: fixtureNamespaces(), Policies: pols})
		if _, err := ipt.Apply(ctx, rs); err != nil {
			t.Fatal(err)
		}
		got, err := ipt.ownChains(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(rs.Chains)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("chains after apply = %q, want %q", got, want)
		}
		assertJump(t, ipt)
		return rs
	}
	deny := pol("default", "deny", networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}})
	allow := pol("default", "allow", networkingv1.NetworkPolicySpec{
		PodSelector: *sel("app", "web"),
		Ingress:     ingressFrom([]networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "client")}}, port("TCP", intstr.FromString("http"))),
	})

	apply(deny)
	dial(t, client, "10.244.2.20:8080", false)
	apply(deny, allow)
	dial(t, client, "10.244.2.20:8080", true)
	dial(t, client, "10.244.2.20:8081", false)

	// Drift: a foreign rule above us and a duplicate jump; apply repairs
	// both and leaves the foreign rule alone.
	sh(t, "iptables", "-I", "FORWARD", "1", "-s", "192.0.2.1/32", "-j", "DROP")
	sh(t, "iptables", "-A", "FORWARD", "-j", fwdChain(nptPrefix))
	apply(deny, allow)
	apply() // stale per-pod chains are deleted
	dial(t, client, "10.244.2.20:8081", true)
	apply(deny)

	if err := ipt.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	all := sh(t, "iptables", "-S")
	if strings.Contains(all, nptPrefix) {
		t.Fatalf("rules left after cleanup:\n%s", all)
	}
	if !strings.Contains(all, "-A FORWARD -s 192.0.2.1/32 -j DROP") {
		t.Fatalf("cleanup removed a foreign rule:\n%s", all)
	}
	dial(t, client, "10.244.2.20:8081", true)
	if err := ipt.Cleanup(ctx); err != nil {
		t.Fatalf("second cleanup: %v", err)
	}
}

func assertJump(t *testing.T, ipt *IPTables) {
	t.Helper()
	pos, err := ipt.forwardJumps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pos, []int{1}) {
		t.Fatalf("FORWARD jumps at %v, want exactly [1]\n%s", pos, sh(t, "iptables", "-S", "FORWARD"))
	}
}
