//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// captureOut is the JSON `netsleuth capture -o json` prints.
type captureOut struct {
	Iface string `json:"iface"`
	Stats struct {
		Packets int    `json:"packets"`
		Stopped string `json:"stopped"`
	} `json:"stats"`
	Flows []struct {
		Proto         string   `json:"proto"`
		Client        string   `json:"client"`
		Server        string   `json:"server"`
		PacketsOut    int      `json:"packetsOut"`
		PacketsIn     int      `json:"packetsIn"`
		Verdicts      []string `json:"verdicts"`
		Sentences     []string `json:"sentences"`
		RepliesSeenAs string   `json:"repliesSeenAs"`
	} `json:"flows"`
}

// captureWhile runs `netsleuth capture` on pod and, once the capture agent
// has had time to start, traffic from the pod with cmd (a shell loop), and
// returns the decoded JSON and the exit code.
func captureWhile(t *testing.T, ns, pod string, args []string, traffic string) (captureOut, int, string) {
	t.Helper()
	stdout, stderr, code := captureRun(t, ns, pod, append([]string{"-o", "json"}, args...), traffic)
	var out captureOut
	if code != 2 {
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("capture printed no JSON (exit %d): %v\n%s\n%s", code, err, stdout, stderr)
		}
	}
	return out, code, stderr
}

// captureRun runs `netsleuth capture` on pod with args while the pod sends
// traffic (a shell loop started once the agent has had time to start), and
// checks that nothing is left in the cluster afterwards.
func captureRun(t *testing.T, ns, pod string, args []string, traffic string) (stdout, stderr string, code int) {
	t.Helper()
	base := append(append([]string{"capture", "--kubeconfig", kubeconfig, "--pod", ns + "/" + pod}, agentFlags...), args...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(4 * time.Second)
		_, _ = execIn(ctxT(t, 30*time.Second), ns, pod, "sh", "-c", traffic)
	}()
	stdout, stderr, code = netsleuthCmd(t, base...)
	<-done
	assertNothingLeft(t)
	return stdout, stderr, code
}

// flowWith returns the first flow to server whose first verdict is verdict.
func flowWith(out captureOut, server, verdict string) (int, bool) {
	for i, f := range out.Flows {
		if f.Server == server && len(f.Verdicts) > 0 && f.Verdicts[0] == verdict {
			return i, true
		}
	}
	return -1, false
}

// TestCaptureFlows: a pod's own traffic captured at its veth and classified
// as people would say it: answered both ways to the external host, refused
// by a closed port, unanswered where a NetworkPolicy drops it. The pcap it
// writes opens in tshark.
func TestCaptureFlows(t *testing.T) {
	ns, a, _, c := labPods(t)
	pcap := filepath.Join(t.TempDir(), "a.pcap")
	loop := func(cmd string) string { return "for i in 1 2 3 4; do " + cmd + "; sleep 0.5; done" }

	out, code, stderr := captureWhile(t, ns, "a", []string{"--peer", "192.168.2.10:80", "--duration", "10s", "-w", pcap},
		loop("timeout 2 wget -q -O /dev/null http://192.168.2.10/"))
	i, ok := flowWith(out, "192.168.2.10:80", "tcp-established")
	if code != 0 || !ok || out.Flows[i].PacketsIn == 0 || out.Flows[i].PacketsOut == 0 {
		t.Fatalf("want the pod's HTTP to 192.168.2.10 both ways, exit 0; got exit %d %+v\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "privileged node agent") {
		t.Errorf("the privileged agent was not announced: %s", stderr)
	}
	ts, err := exec.Command("tshark", "-n", "-r", pcap, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==1 && ip.src==192.168.2.10").Output()
	if err != nil || !strings.Contains(string(ts), "192.168.2.10") {
		t.Errorf("tshark does not show the SYN-ACKs in %s: %v\n%s", pcap, err, ts)
	}

	closed := c.Status.PodIP + ":81"
	out, code, _ = captureWhile(t, ns, "a", []string{"--peer", closed, "--duration", "8s"}, loop("timeout 2 wget -q -O /dev/null http://"+closed+"/"))
	if _, ok := flowWith(out, closed, "tcp-refused"); !ok || code != 1 {
		t.Errorf("want a refused connection to %s (exit 1), got exit %d %+v", closed, code, out)
	}

	// The lab's enforcer drops what c's ingress policy does not admit.
	deny := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny-c"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "c"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	if _, err := kube.NetworkingV1().NetworkPolicies(ns).Create(ctxT(t, 10*time.Second), deny, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the policy drops a → c", func() (bool, string) {
		ok, out := reach(t, ns, "a", url(c.Status.PodIP, 8080))
		return !ok, out
	})
	dropped := c.Status.PodIP + ":8080"
	out, code, _ = captureWhile(t, ns, "a", []string{"--peer", dropped, "--duration", "8s"}, loop("timeout 2 wget -q -O /dev/null http://"+dropped+"/"))
	if _, ok := flowWith(out, dropped, "tcp-no-reply"); !ok || code != 1 {
		t.Errorf("want SYN with no reply to %s (exit 1), got exit %d %+v", dropped, code, out)
	}
	_ = a
}

// TestCaptureProvesMissingSNAT: with the node's MASQUERADE rule gone, the
// external probe's finding carries what its capture of the retry saw at the
// uplink: the pod's own address leaving the node, and nothing coming back;
// the saved pcap shows it in tshark.
func TestCaptureProvesMissingSNAT(t *testing.T) {
	withFault(t, "snat", "--node", "nsl-node1")
	dir := t.TempDir()
	r, _ := active(t, "--probe", "external", "--target", extTarget, "--capture-dir", dir)
	f := find(t, r, want{id: "external.pod-unreachable", status: "fail", subject: extSubject})
	ev := strings.Join(f.Evidence, "\n")
	for _, s := range []string{"uplink", "source not translated", "SYN with no reply", "pcap saved to"} {
		if !strings.Contains(ev, s) {
			t.Errorf("the finding's capture evidence lacks %q:\n%s", s, ev)
		}
	}
	pcaps, _ := filepath.Glob(filepath.Join(dir, "*-external-nsl-node1-*.pcap"))
	if len(pcaps) < 2 {
		t.Fatalf("want the veth and uplink pcaps in %s, got %v", dir, pcaps)
	}
	shown, cidr := false, podCIDR(t, "nsl-node1")
	for _, p := range pcaps {
		out, err := exec.Command("tshark", "-n", "-r", p, "-Y", "ip.src=="+cidr+" && ip.dst==192.168.2.10 && tcp.flags.syn==1").Output()
		shown = shown || (err == nil && strings.Contains(string(out), "192.168.2.10"))
	}
	if !shown {
		t.Errorf("no saved pcap shows the pod-sourced SYNs to 192.168.2.10 in tshark: %v", pcaps)
	}
}

// TestCaptureDNSToZeroCoreDNS: a query to the kube-dns ClusterIP with
// CoreDNS at zero, captured at the agent's veth, is named for what the
// packets show.
func TestCaptureDNSToZeroCoreDNS(t *testing.T) {
	withFault(t, "coredns-zero")
	r, _ := dnsCheck(t)
	f := find(t, r, want{id: "dns.live-kube-dns", status: "fail", subject: "Node/nsl-node1"})
	ev := strings.Join(f.Evidence, "\n")
	if !strings.Contains(ev, "capture on node nsl-node1, pod veth") {
		t.Fatalf("no capture evidence:\n%s", ev)
	}
	// kube-proxy answers a Service without endpoints with an ICMP port
	// unreachable; without it the query goes unanswered: either is what a
	// person sees, and the capture must name one of them.
	if !strings.Contains(ev, "DNS query with no answer") && !strings.Contains(ev, "unreachable") {
		t.Errorf("the capture names neither an unanswered query nor an ICMP unreachable:\n%s", ev)
	}
}

// TestCaptureInterrupted: SIGINT during a capture stops it, and leaves no
// agent in the cluster and no capture process on the node.
func TestCaptureInterrupted(t *testing.T) {
	ns, _, _, _ := labPods(t)
	cmd := exec.Command(netsleuth, append([]string{"capture", "--kubeconfig", kubeconfig, "--pod", ns + "/a", "--duration", "60s"}, agentFlags...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 45*time.Second, "the capture agent runs", func() (bool, string) {
		out, _ := exec.Command("pgrep", "-f", "netsleuth agent capture").Output()
		return len(bytes.TrimSpace(out)) > 0, errb.String()
	})
	_ = cmd.Process.Signal(syscall.SIGINT)
	werr := make(chan error, 1)
	go func() { werr <- cmd.Wait() }()
	select {
	case <-werr:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("capture did not end within 60s of SIGINT")
	}
	assertNothingLeft(t)
	eventually(t, 30*time.Second, "no capture process is left on the nodes", func() (bool, string) {
		out, _ := exec.Command("pgrep", "-af", "netsleuth agent capture").Output()
		return len(bytes.TrimSpace(out)) == 0, string(out)
	})
}

// TestCaptureBadInput: an unknown pod, an interface the node does not have
// and an unparseable peer are one sentence each and exit 2, and leave
// nothing behind.
func TestCaptureBadInput(t *testing.T) {
	ns, _, _, _ := labPods(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--pod", ns + "/nope"}, "pod " + ns + "/nope not found"},
		{[]string{"--pod", ns + "/a", "--iface", "nsl-none0", "--duration", "2s"}, `no network interface "nsl-none0"`},
		{[]string{"--pod", ns + "/a", "--peer", "10.244.x.1"}, `--peer "10.244.x.1" is not an IP`},
		{[]string{"--pod", ns + "/a", "--filter", "port banana"}, `--filter "port banana": "banana" is not a port number`},
		{[]string{"--read", truncatedPcap(t)}, "cut.pcap is truncated after packet 0"},
	}
	for _, tc := range cases {
		stdout, stderr, code := netsleuthCmd(t, append(append([]string{"capture", "--kubeconfig", kubeconfig}, agentFlags...), tc.args...)...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || !strings.Contains(lines[len(lines)-1], tc.want) || stdout != "" {
			t.Errorf("capture %v: exit %d, stderr %q, stdout %q; want exit 2 and %q", tc.args, code, stderr, stdout, tc.want)
		}
		assertNothingLeft(t)
	}
}

// truncatedPcap is a pcap whose first record is cut short.
func truncatedPcap(t *testing.T) string {
	t.Helper()
	b := []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0}
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, 60, 0, 0, 0, 60, 0, 0, 0) // a 60-byte record...
	b = append(b, make([]byte, 10)...)                              // ...of which 10 bytes are there
	path := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCaptureIfacesAndBounds: the pod's HTTP to the external host seen on
// the node's uplink (masqueraded: the node's address, both ways, one
// connection each: the lab's uplink is a bridge with br_netfilter, whose
// receive tap sees the replies already translated back to the pod, and the
// analysis joins them to their requests) and on the bridge (printed as
// text); --count stops the capture at that many packets and --filter keeps
// only what it admits.
func TestCaptureIfacesAndBounds(t *testing.T) {
	ns, a, _, _ := labPods(t)
	http := "for i in 1 2 3 4; do timeout 2 wget -q -O /dev/null http://192.168.2.10/; sleep 0.5; done"

	out, code, stderr := captureWhile(t, ns, "a", []string{"--iface", "uplink", "--peer", extTarget, "--duration", "8s"}, http)
	i, ok := flowWith(out, extTarget, "tcp-established")
	if code != 0 || !ok || strings.HasPrefix(out.Flows[i].Client, a.Status.PodIP+":") || out.Flows[i].PacketsIn == 0 {
		t.Errorf("uplink: want the HTTP flows masqueraded (client not %s), both ways, established, exit 0; got exit %d %+v\n%s", a.Status.PodIP, code, out, stderr)
	} else {
		t.Logf("uplink: %s -> %s, %d/%d packets, replies seen as %q", out.Flows[i].Client, out.Flows[i].Server,
			out.Flows[i].PacketsOut, out.Flows[i].PacketsIn, out.Flows[i].RepliesSeenAs)
	}

	text, stderr, code := captureRun(t, ns, "a", []string{"--iface", "bridge", "--peer", extTarget, "--duration", "8s", "-o", "text"}, http)
	for _, s := range []string{"capture: node ", "bridge", "PROTO", a.Status.PodIP, extTarget, "tcp-established", "what the flows show:", "connection established"} {
		if !strings.Contains(text, s) {
			t.Errorf("bridge -o text lacks %q (exit %d):\n%s\n%s", s, code, text, stderr)
		}
	}

	out, code, stderr = captureWhile(t, ns, "a", []string{"--count", "3", "--filter", "tcp and port 80 and host 192.168.2.10", "--duration", "20s"}, http)
	if out.Stats.Packets != 3 || out.Stats.Stopped != "packets" || code == 2 {
		t.Errorf("--count 3: want 3 packets, stopped by packets; got exit %d %+v\n%s", code, out, stderr)
	}
	for _, f := range out.Flows {
		if f.Server != extTarget || f.Proto != "tcp" {
			t.Errorf("--filter admitted a flow it does not name: %+v", f)
		}
	}
}

// TestCaptureReplyDroppedOnNode: with node 1 dropping what the external
// host sends its pods (a rule in mangle FORWARD: the lab's policy enforcer
// keeps its jump, which accepts established traffic, first in filter
// FORWARD, above any rule put there), the external probe's capture of its
// retry sees the replies arrive on the uplink (the bridge nsl-br0, already
// translated back to the pod there) and never reach the pod's veth, and says
// so; the uplink's own flow is a handshake the pod never completed, not a
// SYN with no reply.
func TestCaptureReplyDroppedOnNode(t *testing.T) {
	exclusive(t)
	rule := fmt.Sprintf("FORWARD -s 192.168.2.10 -d %s -m comment --comment netsleuth-e2e-reply-drop -j DROP", podCIDR(t, "nsl-node1"))
	if out, err := labCmd("on", "nsl-node1", "iptables -t mangle -I "+rule); err != nil {
		t.Fatalf("adding the drop rule: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := labCmd("on", "nsl-node1", "while iptables -t mangle -C "+rule+" 2>/dev/null; do iptables -t mangle -D "+rule+"; done"); err != nil {
			t.Errorf("removing the drop rule: %v\n%s", err, out)
		}
	})
	r, _ := active(t, "--probe", "external", "--target", extTarget, "--capture-dir", t.TempDir())
	var ev []string
	for _, f := range r.Findings {
		if f.Subject != nil && f.Subject.String() == extSubject {
			ev = append(ev, f.Evidence...)
		}
	}
	all := strings.Join(ev, "\n")
	if !strings.Contains(all, "reply seen on nsl-node1/nsl-br0 but not on nsl-node1/") || !strings.Contains(all, "(dropped on the node)") {
		t.Errorf("the capture evidence of %s does not say the replies reached the uplink and were dropped on the node:\n%s", extSubject, all)
	}
	if !strings.Contains(all, "nsl-br0: SYN-ACK from 192.168.2.10:80 never acknowledged") || strings.Contains(all, "nsl-br0: SYN with no reply") {
		t.Errorf("the uplink's flow should be a handshake the pod never completed, not a SYN with no reply:\n%s", all)
	}
}
