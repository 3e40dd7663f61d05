//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netsleuth/netsleuth/model"
)

// Every fix netsleuth hands out for a fault the lab can inject is proven
// here: the test takes the cause's first fix from the JSON report, applies
// it the way a person would (its commands on the node it names, through the
// lab's node entry, or where kubectl runs; its manifest with kubectl apply),
// runs the probes again and requires the cause and its symptoms to pass and
// nothing new to fail.

// ensureRE matches the idempotent iptables command the fixes use, so the
// test can take the rule out again: the lab's teardown would too, but a
// rule left between tests would hide the next test's fault.
var ensureRE = regexp.MustCompile(`^iptables (-t \S+ )?-C (\S+) (.*) 2>/dev/null \|\| iptables `)

// mend applies the first fix of f and registers the undo of the iptables
// rules it added to a node.
func mend(t *testing.T, f model.Finding) {
	t.Helper()
	if len(f.Fixes) == 0 {
		t.Fatalf("%s has no fix", f.Key)
	}
	fx := f.Fixes[0]
	t.Logf("applying fix 1 of %s (%s)%s", f.Key, fx.Description, onNode(fx.Node))
	if fx.Manifest != "" {
		kubectl(t, fx.Manifest, "apply", "-f", "-")
	}
	for _, c := range fx.Commands {
		if strings.HasPrefix(strings.TrimSpace(c), "#") {
			continue
		}
		runFixCommand(t, fx.Node, c)
		if m := ensureRE.FindStringSubmatch(c); m != nil && fx.Node != "" {
			del := fmt.Sprintf("while iptables %s-C %s %s 2>/dev/null; do iptables %s-D %s %s; done", m[1], m[2], m[3], m[1], m[2], m[3])
			node := fx.Node
			t.Cleanup(func() { runFixCommand(t, node, del) })
		}
	}
	if len(fx.Commands) == 0 && fx.Manifest == "" {
		t.Fatalf("fix 1 of %s has neither commands nor a manifest: %q", f.Key, fx.Description)
	}
}

func onNode(n string) string {
	if n == "" {
		return ""
	}
	return " on node " + n
}

// runFixCommand runs one fix command as a person would: on the node through
// `hack/lab on`, or here with the lab's kubeconfig and netsleuth on PATH.
func runFixCommand(t *testing.T, node, command string) {
	t.Helper()
	if node != "" {
		if out, err := labCmd("on", node, command); err != nil {
			t.Fatalf("on node %s: %s: %v\n%s", node, command, err, out)
		}
		return
	}
	cmd := exec.Command("sh", "-c", command)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+filepath.Dir(netsleuth)+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
}

// kubectl runs kubectl against the lab with stdin.
func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s\n%s", strings.Join(args, " "), err, out.String(), stdin)
	}
	return out.String()
}

// assertManifestsApply checks that the API server accepts every manifest the
// report's failing findings carry (server-side dry run: nothing is created).
func assertManifestsApply(t *testing.T, r *model.Report) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range r.Findings {
		if !f.Status.Failing() && f.Status != model.StatusWarn {
			continue
		}
		for _, fx := range f.Fixes {
			if fx.Manifest == "" || seen[fx.Manifest] {
				continue
			}
			seen[fx.Manifest] = true
			kubectl(t, fx.Manifest, "apply", "--dry-run=server", "-f", "-")
		}
	}
}

// proveFix finds the cause in before, checks its manifests, applies its first
// fix, and re-runs (a few times, while the cluster settles) until the cause
// and every symptom it had are no longer failing; it then requires that no
// finding fails that did not fail before.
func proveFix(t *testing.T, before *model.Report, cause want, rerun func() *model.Report) *model.Report {
	t.Helper()
	c := find(t, before, cause)
	symptoms := before.Symptoms(c.Key)
	assertManifestsApply(t, before)
	mend(t, c)
	var after *model.Report
	for attempt := 1; ; attempt++ {
		after = rerun()
		left := stillFailing(after, append([]model.Finding{c}, symptoms...))
		if len(left) == 0 {
			break
		}
		if attempt == 4 {
			t.Fatalf("after fix 1 of %s, these still fail:\n  %s", c.Key, strings.Join(left, "\n  "))
		}
		time.Sleep(3 * time.Second)
	}
	failedBefore := map[string]bool{}
	for _, f := range before.Findings {
		failedBefore[f.Key] = f.Status.Failing()
	}
	for _, f := range after.Findings {
		if f.Status.Failing() && !failedBefore[f.Key] {
			t.Errorf("the fix for %s made %s fail: %s", c.Key, f.Key, f.RootCause)
		}
	}
	t.Logf("fix 1 of %s mends it and its %d symptom(s)", c.Key, len(symptoms))
	return after
}

// stillFailing lists the findings of want (by key) that fail in r.
func stillFailing(r *model.Report, want []model.Finding) []string {
	var out []string
	for _, w := range want {
		if f, ok := r.Find(w.Key); ok && f.Status.Failing() {
			out = append(out, fmt.Sprintf("%s (%s): %s", f.Key, f.Status, f.RootCause))
		}
	}
	return out
}

// symptomOf checks that r has a finding of id that is a symptom of cause.
func symptomOf(t *testing.T, r *model.Report, cause model.Finding, id string) model.Finding {
	t.Helper()
	for _, f := range r.Symptoms(cause.Key) {
		if f.ID == id {
			if f.RootCause != cause.RootCause {
				t.Errorf("symptom %s reads %q, its cause %q", f.Key, f.RootCause, cause.RootCause)
			}
			return f
		}
	}
	t.Fatalf("no %s finding cites %s as its cause; symptoms: %+v", id, cause.Key, r.Symptoms(cause.Key))
	return model.Finding{}
}

// TestFixNodeFaults: each node-network fault on nsl-node1 is one shared
// node.* root cause, cited by every probe that meets it, and its first fix
// (applied on nsl-node1, or to the cluster) mends it. On the calico profile
// the snat fault is its IPPool's natOutgoing, and so is the fix.
func TestFixNodeFaults(t *testing.T) {
	cidr := podCIDR(t, "nsl-node1")
	cases := []struct {
		fault    string
		cause    want
		symptoms []string
	}{
		{"snat", want{id: "node.no-masquerade", status: "fail", subject: "Node/nsl-node1",
			rootCause: `No MASQUERADE or SNAT rule on node nsl-node1 covers pod CIDR ` + regexp.QuoteMeta(cidr) + ` → 192\.168\.2\.0/24` +
				onProfile("", `: felix \(Calico\) masquerades pod traffic in cali-nat-outgoing only for IPPools with natOutgoing, and its IPPool pods-nsl-node1 \(`+regexp.QuoteMeta(cidr)+`\) has natOutgoing: false`),
			fix: onProfile("iptables -t nat -C POSTROUTING -s "+cidr+" -d 192.168.2.0/24 -j MASQUERADE 2>/dev/null || iptables -t nat -A POSTROUTING",
				`kubectl patch ippools.crd.projectcalico.org pods-nsl-node1 --type merge -p '{"spec":{"natOutgoing":true}}'`)},
			[]string{"external.pod-unreachable"}},
		{"ip-forward", want{id: "node.ip-forward", status: "fail", subject: "Node/nsl-node1",
			rootCause: `ip_forward is 0 on node nsl-node1`, fix: "sysctl -w net.ipv4.ip_forward=1"},
			[]string{"external.pod-unreachable", "pod-to-pod.cross-node-blocked"}},
		{"node-route", want{id: "node.no-route", status: "fail", subject: "Node/nsl-node1",
			rootCause: `Node nsl-node1 has only the route .* for 192\.168\.2\.10`, fix: "ip route replace 192.168.2.0/24 via 10.250.0.254"},
			[]string{"external.node-unreachable"}},
	}
	for _, tc := range cases {
		t.Run(tc.fault, func(t *testing.T) {
			args := []string{"--probe", "pod-to-pod", "--probe", "external", "--probe", "node-sysctl", "--target", extTarget}
			if tc.fault == "ip-forward" {
				// The bridge CNI plugin sets ip_forward=1 on every pod ADD, which
				// would heal this fault as soon as the agents start: start the
				// pod agents first, then break forwarding, and let the run reuse them.
				exclusive(t)
				args = append(args, "--agent-namespace", preStartedAgents(t, "e2efwd"), "--run-id", "e2efwd")
			}
			withFault(t, tc.fault, "--node", "nsl-node1")
			r, code := active(t, args...)
			c := find(t, r, tc.cause)
			for _, id := range tc.symptoms {
				symptomOf(t, r, c, id)
			}
			find(t, r, want{id: "external.ok", status: "pass", subject: "Node/nsl-node2 -> " + extTarget})
			if code != 1 {
				t.Errorf("exit %d with fault %s, want 1", code, tc.fault)
			}
			proveFix(t, r, tc.cause, func() *model.Report { r, _ := active(t, args...); return r })
		})
	}
}

// TestFixCoreDNSZero: CoreDNS scaled to 0 is one root cause, the kube-dns
// Service's (the same finding the services probe gives), with the live DNS
// failures from every node as its symptoms; scaling back up mends them.
func TestFixCoreDNSZero(t *testing.T) {
	withFault(t, "coredns-zero")
	r, code := dnsCheck(t, "--probe", "services")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	cause := want{id: "services.scaled-to-zero", status: "fail", subject: "Service/kube-system/kube-dns",
		rootCause: `Deployment kube-system/coredns, whose pods Service kube-system/kube-dns selects .* is scaled to 0 replicas`,
		fix:       "kubectl -n kube-system scale deployment coredns --replicas=2"}
	c := find(t, r, cause)
	if n := countID(r, "services.scaled-to-zero", "fail"); n != 1 {
		t.Errorf("the dns and services probes give %d kube-dns findings, want one", n)
	}
	for _, node := range []string{"Node/nsl-node1", "Node/nsl-node2"} {
		for _, id := range []string{"dns.live-kube-dns", "dns.live-resolution-failed"} {
			f := find(t, r, want{id: id, status: "fail", subject: node})
			if f.CausedBy != c.Key {
				t.Errorf("%s on %s is not a symptom of %s (causedBy %q)", id, node, c.Key, f.CausedBy)
			}
		}
	}
	proveFix(t, r, cause, func() *model.Report { r, _ := dnsCheck(t, "--probe", "services"); return r })
}

// TestFixKubeletConfig: each kubelet setting the lab can break on nsl-node2
// is found through configz, and its first fix (the edit of the kubelet's
// configuration file and a kubelet restart, on the node) mends it.
func TestFixKubeletConfig(t *testing.T) {
	cases := []struct {
		set    string
		probes []string
		cause  want
	}{
		{"makeIPTablesUtilChains=false", []string{"--probe", "kubelet"}, want{id: "kubelet.make-iptables-util-chains", status: "fail", subject: "Node/nsl-node2",
			rootCause: `nsl-node2 runs with makeIPTablesUtilChains=false`, fix: "--make-iptables-util-chains=true"}},
		{"readOnlyPort=10255", []string{"--probe", "kubelet"}, want{id: "kubelet.read-only-port", status: "fail", subject: "Node/nsl-node2", rootCause: `10255`}},
		{"maxPods=300", []string{"--probe", "podcidr"}, want{id: "podcidr.node-cidr-too-small", status: "fail", subject: "Node/nsl-node2", rootCause: `300`}},
		{"clusterDNS=[10.96.0.99]", []string{"--probe", "kubelet", "--probe", "dns", "--target", "ext.netsleuth.test"},
			want{id: "kubelet.cluster-dns", status: "fail", subject: "Node/nsl-node2", rootCause: `nameserver 10\.96\.0\.99`, fix: "-v k='clusterDNS' -v v='[10.96.0.10]'"}},
	}
	for _, tc := range cases {
		t.Run(tc.set, func(t *testing.T) {
			withFault(t, "kubelet-config", "--node", "nsl-node2", "--set", tc.set)
			args := append(append([]string{}, agentFlags...), tc.probes...)
			r, code := check(t, args...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			c := find(t, r, tc.cause)
			if c.Fixes[0].Node != "nsl-node2" {
				t.Errorf("the first fix runs on %q, want nsl-node2", c.Fixes[0].Node)
			}
			if strings.HasPrefix(tc.set, "clusterDNS") {
				symptomOf(t, r, c, "dns.live-resolution-failed")
				if n := countID(r, "kubelet.cluster-dns", "fail"); n != 1 {
					t.Errorf("the kubelet and dns probes give %d clusterDNS findings for nsl-node2, want one", n)
				}
			}
			proveFix(t, r, tc.cause, func() *model.Report { r, _ := check(t, args...); return r })
		})
	}
}

// TestTwoFaultsTwoRootCauses: with SNAT gone on nsl-node1 and CoreDNS at
// zero, a run of every default probe (and the external target) leads with
// exactly those two root causes, and every other failure is a symptom of one.
func TestTwoFaultsTwoRootCauses(t *testing.T) {
	withFault(t, "snat", "--node", "nsl-node1")
	withFault(t, "coredns-zero")
	args := append(append([]string{}, agentFlags...), "--target", extTarget)
	r, code := check(t, args...)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	snat := find(t, r, want{id: "node.no-masquerade", status: "fail", subject: "Node/nsl-node1"})
	dns := find(t, r, want{id: "services.scaled-to-zero", status: "fail", subject: "Service/kube-system/kube-dns"})
	roots := map[string]bool{snat.Key: true, dns.Key: true}
	for _, f := range r.Findings {
		switch {
		case roots[f.Key]:
		case f.CausedBy != "" && !roots[f.CausedBy]:
			t.Errorf("%s is a symptom of %s, not of one of the two faults", f.Key, f.CausedBy)
		case f.CausedBy == "" && f.Status.Failing():
			t.Errorf("%s fails on its own: %s", f.Key, f.RootCause)
		}
	}
	if r.Summary.RootCauses != 2 || r.Summary.Symptoms < 3 {
		t.Errorf("summary %+v, want 2 root causes and their symptoms", r.Summary)
	}
	text, _, _ := netsleuthCmd(t, append([]string{"check", "--kubeconfig", kubeconfig}, args...)...)
	head := fmt.Sprintf("2 root causes, %d symptoms", r.Summary.Symptoms)
	for _, s := range []string{head, "ROOT CAUSES (fix these first)", "[1]  FAIL ", "[2]  FAIL ", "ALL FINDINGS BY PROBE"} {
		if !strings.Contains(text, s) {
			t.Errorf("the text report lacks %q:\n%s", s, text)
		}
	}
	if i, j := strings.Index(text, snat.Title), strings.Index(text, "ALL FINDINGS BY PROBE"); i < 0 || i > j {
		t.Errorf("the SNAT root cause is not among the leading root causes:\n%s", text)
	}
}
