package policy

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/probetest"
)

func tcp(o ops.Outcome) ops.Result {
	return ops.Result{Op: ops.Op{Kind: ops.TCP, Target: "10.0.0.10", Port: 80}, Outcome: o}
}

func udp(o ops.Outcome) ops.Result {
	return ops.Result{Op: ops.Op{Kind: ops.UDP, Target: "10.0.0.10", Port: 53}, Outcome: o}
}

var (
	allowed = Verdict{From: "default/a", To: "default/b", Port: Port{80, corev1.ProtocolTCP}}
	denied  = Verdict{From: "default/a", To: "default/b", Port: Port{80, corev1.ProtocolTCP},
		Ingress: Direction{Isolated: true, Policies: []string{"default/deny"}}}
	egressDenied = Verdict{From: "default/a", To: "default/b", Port: Port{80, corev1.ProtocolTCP},
		Egress:  Direction{Isolated: true, Policies: []string{"default/egress"}},
		Ingress: Direction{Exempt: "the destination uses the host network"}}
)

func TestDiagnose(t *testing.T) {
	cases := []struct {
		name        string
		v           Verdict
		hostNet     bool
		live        ops.Result
		evidence    string // prefix of the verdict's new evidence
		id          string // contradiction finding, "" for none
		status      model.Status
		causeSubstr string
	}{
		{"allow+connected", allowed, false, tcp(ops.OK), "verified live: TCP connect 10.0.0.10:80", "", "", ""},
		{"allow+refused", allowed, false, tcp(ops.Refused), "verified live:", "", "", ""},
		{"allow+timeout", allowed, false, tcp(ops.Timeout), "live traffic contradicts", "policy.allowed-but-unreachable", model.StatusFail, "Not a NetworkPolicy problem"},
		{"allow+no-route", allowed, false, tcp(ops.HostUnreach), "live traffic contradicts", "policy.allowed-but-unreachable", model.StatusFail, "across nodes"},
		{"allow+udp-silence", allowed, false, udp(ops.Timeout), "not verified live", "", "", ""},
		{"allow+udp-echo", allowed, false, udp(ops.OK), "verified live: UDP echo", "", "", ""},
		{"deny+timeout", denied, false, tcp(ops.Timeout), "verified live:", "", "", ""},
		{"deny+prohibited", denied, false, tcp(ops.AdminProhibit), "verified live:", "", "", ""},
		{"deny+connected", denied, false, tcp(ops.OK), "live traffic contradicts", "policy.not-enforced", model.StatusFail, "does not enforce NetworkPolicy"},
		{"deny+refused", denied, false, tcp(ops.Refused), "live traffic contradicts", "policy.not-enforced", model.StatusWarn, "REJECT rather than DROP"},
		{"deny+udp-echo", denied, false, udp(ops.OK), "live traffic contradicts", "policy.not-enforced", model.StatusFail, "does not enforce"},
		{"deny+udp-silence", denied, false, udp(ops.Timeout), "not verified live", "", "", ""},
		{"deny+agent-failed", denied, false, tcp(ops.Failed), "not verified live", "", "", ""},
		{"hostnet+connected", egressDenied, true, tcp(ops.OK), "live traffic contradicts", "policy.host-network-target", model.StatusWarn, "hostNetwork: true"},
		{"hostnet+timeout", egressDenied, true, tcp(ops.Timeout), "verified live:", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Comparison{Verdict: tc.v, DstHostNetwork: tc.hostNet, Static: []string{"ingress: ..."},
				Subject: &model.Subject{Kind: "Pod", Namespace: "default", Name: "b"},
				Live:    Live{Via: "stand-in pod default/x (10.0.0.99) on node n1", Result: tc.live, Attempts: 1}}
			ev, f := Diagnose(c)
			if !strings.HasPrefix(ev, tc.evidence) || !strings.Contains(ev, "stand-in pod default/x") {
				t.Errorf("evidence %q, want prefix %q naming the sender", ev, tc.evidence)
			}
			if tc.id == "" {
				if f != nil {
					t.Fatalf("unexpected finding %s: %s", f.ID, f.Title)
				}
				return
			}
			if f == nil || f.ID != tc.id || f.Status != tc.status {
				t.Fatalf("want %s (%s), got %+v", tc.id, tc.status, f)
			}
			f.Probe = "policy"
			if err := f.Validate(); err != nil {
				t.Error(err)
			}
			if !strings.Contains(f.RootCause, tc.causeSubstr) {
				t.Errorf("root cause %q lacks %q", f.RootCause, tc.causeSubstr)
			}
			if !strings.Contains(strings.Join(f.Evidence, "\n"), "live: TCP") && !strings.Contains(strings.Join(f.Evidence, "\n"), "live: UDP") {
				t.Errorf("contradiction evidence lacks the live line: %v", f.Evidence)
			}
		})
	}
}

func TestNotEnforcedFixNamesEnforcers(t *testing.T) {
	_, f := Diagnose(Comparison{Verdict: denied, Live: Live{Via: "x", Result: tcp(ops.OK), Attempts: 4}})
	all := f.Fixes[0].Description + strings.Join(f.Fixes[0].Commands, "\n")
	for _, s := range []string{"Calico", "Cilium", "kube-network-policies", "netsleuth check --probe policy --from default/a --to default/b:80"} {
		if !strings.Contains(all, s) {
			t.Errorf("fix lacks %q:\n%s", s, all)
		}
	}
	if !strings.Contains(strings.Join(f.Evidence, "\n"), "same answer on 4 attempts") {
		t.Errorf("evidence does not say the contradiction persisted: %v", f.Evidence)
	}
}

// fakeAgents stands in for the agent manager: stand-ins become pods in the
// fake clientset, Exec answers from results in order (the last repeats).
type fakeAgents struct {
	probetest.Agents
	kube    kubernetes.Interface
	results []ops.Outcome
	sent    []ops.Op
	started []agent.StandInFor
	fail    error
}

func (f *fakeAgents) Namespace() string { return "netsleuth-r1" }
func (f *fakeAgents) Exec(_ context.Context, _ probes.Agent, req ops.Request) (ops.Response, error) {
	o := f.results[min(len(f.sent), len(f.results)-1)]
	f.sent = append(f.sent, req.Ops[0])
	return ops.Response{Results: []ops.Result{{Op: req.Ops[0], Outcome: o}}}, nil
}
func (f *fakeAgents) StartStandIn(ctx context.Context, s agent.StandInFor) probes.Agent {
	f.started = append(f.started, s)
	a := probes.Agent{Kind: agent.AgentStandIn, Node: s.Node, Namespace: s.Namespace, Pod: "netsleuth-as-" + s.Pod + "-r1", IP: "10.0.0.99", Err: f.fail}
	if f.fail == nil {
		_, _ = f.kube.CoreV1().Pods(s.Namespace).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: a.Pod, Labels: agent.StandInLabels("r1", s.Labels)}}, metav1.CreateOptions{})
	}
	return a
}
func (f *fakeAgents) StartEphemeral(_ context.Context, s agent.StandInFor, _ time.Duration) probes.Agent {
	return probes.Agent{Kind: agent.AgentEphemeral, Node: s.Node, Namespace: s.Namespace, Pod: s.Pod, IP: "10.0.0.11"}
}

type cleanupRecorder struct {
	recorder
	cleanups []func(context.Context) error
}

func (r *cleanupRecorder) Cleanup(fn func(context.Context) error) {
	r.cleanups = append(r.cleanups, fn)
}

func runLive(t *testing.T, cs *fake.Clientset, fa *fakeAgents, from, to, mode string) *cleanupRecorder {
	t.Helper()
	saved := liveRetry
	liveRetry = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	t.Cleanup(func() { liveRetry = saved })
	fa.kube = cs
	rec := &cleanupRecorder{}
	env := &probes.Env{RunID: "r1", Kube: cs, Agents: fa, Options: probes.Options{From: from, To: to, PolicyLive: mode}}
	if err := New().Run(context.Background(), env, rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestLiveDeniedAgrees(t *testing.T) {
	cs := accessNginx()
	fa := &fakeAgents{results: []ops.Outcome{ops.Timeout}}
	rec := runLive(t, cs, fa, "default/busybox", "default/nginx:80", "")
	v := rec.byID("policy.verdict")[0]
	ev := strings.Join(v.Evidence, "\n")
	if v.Status != model.StatusWarn || !strings.Contains(ev, "verified live: TCP connect 10.0.0.10:80 from stand-in pod default/netsleuth-as-busybox-r1 (10.0.0.99)") {
		t.Errorf("verdict evidence:\n%s", ev)
	}
	if !strings.Contains(ev, "netsleuth.dev/run-id") || !strings.Contains(ev, "no NetworkPolicy selects on those keys") {
		t.Errorf("evidence does not say which labels were added and that no policy selects on them:\n%s", ev)
	}
	if len(fa.sent) != 1 || len(rec.byID("policy.not-enforced")) != 0 {
		t.Errorf("agreement on the first attempt should end it: sent %d, findings %+v", len(fa.sent), rec.findings)
	}
	if s := fa.started[0]; s.Node != "" || s.Namespace != "default" || s.Labels["run"] != "busybox" {
		t.Errorf("stand-in for %+v", s)
	}
	if len(rec.cleanups) != 0 {
		t.Errorf("the stand-in is the run's, shared by its probes and deleted when the run closes (agent.TestCloseDeletesStandIns), yet the probe registered %d cleanup(s)", len(rec.cleanups))
	}
}

func TestLiveNotEnforcedAfterRetries(t *testing.T) {
	fa := &fakeAgents{results: []ops.Outcome{ops.OK}}
	rec := runLive(t, accessNginx(), fa, "default/busybox", "default/nginx:80", "standin")
	f := rec.byID("policy.not-enforced")
	if len(f) != 1 || f[0].Status != model.StatusFail || len(fa.sent) != 1+len(liveRetry) {
		t.Fatalf("want one not-enforced fail after %d attempts, got %d attempts, %+v", 1+len(liveRetry), len(fa.sent), rec.findings)
	}
	if !strings.Contains(strings.Join(rec.byID("policy.verdict")[0].Evidence, "\n"), "see policy.not-enforced") {
		t.Error("the verdict does not point at the contradiction")
	}
}

func TestLiveEnforcerCatchesUp(t *testing.T) {
	fa := &fakeAgents{results: []ops.Outcome{ops.OK, ops.Timeout}}
	rec := runLive(t, accessNginx(), fa, "default/busybox", "default/nginx:80", "standin")
	if len(rec.byID("policy.not-enforced")) != 0 || len(fa.sent) != 2 {
		t.Errorf("a stand-in the enforcer programs late is not a contradiction: %d attempts, %+v", len(fa.sent), rec.findings)
	}
}

func TestLiveOffAndSkips(t *testing.T) {
	fa := &fakeAgents{results: []ops.Outcome{ops.OK}}
	rec := runLive(t, accessNginx(), fa, "default/busybox", "default/nginx:80", "off")
	if len(fa.started)+len(fa.sent) != 0 || !strings.Contains(strings.Join(rec.byID("policy.verdict")[0].Evidence, " "), "--policy-live=off") {
		t.Errorf("off must send nothing: %+v", rec.findings)
	}
	rec = runLive(t, accessNginx(), fa, "10.9.9.9", "default/nginx:80", "")
	if len(fa.started) != 0 || !strings.Contains(strings.Join(rec.byID("policy.verdict")[0].Evidence, " "), "not verified live: the source is an IP") {
		t.Errorf("an IP source has nothing to stand in for: %+v", rec.findings)
	}
}

func TestLiveStandInNotStarted(t *testing.T) {
	fa := &fakeAgents{results: []ops.Outcome{ops.OK}, fail: &probes.AgentStartError{Kind: agent.AgentStandIn, Pod: "p", Reason: "ErrImageNeverPull", Detail: "x"}}
	rec := runLive(t, accessNginx(), fa, "default/busybox", "default/nginx:80", "")
	if len(rec.byID("policy.agent-not-started")) != 1 || len(rec.byID("policy.verdict")) != 1 || len(fa.sent) != 0 {
		t.Errorf("want the static verdict and an agent-not-started error: %+v", rec.findings)
	}
}

func TestLiveEphemeral(t *testing.T) {
	fa := &fakeAgents{results: []ops.Outcome{ops.Timeout}}
	rec := runLive(t, accessNginx(), fa, "default/busybox", "default/nginx:80", "ephemeral")
	ev := strings.Join(rec.byID("policy.verdict")[0].Evidence, "\n")
	if len(rec.cleanups) != 0 || !strings.Contains(ev, "ephemeral container netsleuth-r1 in default/busybox") || !strings.Contains(ev, "verified live") {
		t.Errorf("ephemeral evidence:\n%s", ev)
	}
}

// TestStandInSelectedByNetsleuthLabel: a policy that selects on a label
// netsleuth adds makes the stand-in unfit; the probe says so instead of
// comparing.
func TestStandInSelectedByNetsleuthLabel(t *testing.T) {
	cs := accessNginx()
	_, err := cs.NetworkingV1().NetworkPolicies("default").Create(context.Background(), &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "no-netsleuth"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{agent.LabelManagedBy: agent.ManagedBy}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeAgents{results: []ops.Outcome{ops.OK}}
	rec := runLive(t, cs, fa, "default/nginx", "shop/cart:80", "")
	ev := strings.Join(rec.byID("policy.verdict")[0].Evidence, "\n")
	if !strings.Contains(ev, "default/no-netsleuth select on labels netsleuth adds") || len(rec.byID("policy.not-enforced")) != 0 {
		t.Errorf("evidence:\n%s\nfindings %+v", ev, rec.findings)
	}
}
