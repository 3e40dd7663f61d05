package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/nodenet"
)

const felixRules = "*filter\n:FORWARD ACCEPT [0:0]\n:cali-FORWARD - [0:0]\n-A FORWARD -m comment --comment cali:wUHhoiAYhphO9Mso -j cali-FORWARD\nCOMMIT\n"

// answer is a node agent's answer to FactsRequest plus the health op.
func answer(iptables string, health ops.Result) ops.Response {
	var rs []ops.Result
	for _, o := range agent.FactsRequest().Ops {
		r := ops.Result{Op: o, Outcome: ops.OK}
		if o.Kind == ops.IPTablesSave {
			r.Output = iptables
		}
		rs = append(rs, r)
	}
	return ops.Response{Results: append(rs, health)}
}

func TestFelixStates(t *testing.T) {
	ok := ops.Result{Outcome: ops.OK, Status: 200}
	cases := []struct {
		name     string
		resp     ops.Response
		state    nodenet.FelixState
		detail   string
		evidence string
	}{
		{"ready", answer(felixRules, ok), nodenet.FelixReady, "ready", "→ HTTP 200"},
		{"not ready", answer(felixRules, ops.Result{Outcome: ops.OK, Status: 503}), nodenet.FelixStale, "running but not ready (its health port answers HTTP 503)", "felix's chains are there"},
		{"frozen", answer(felixRules, ops.Result{Outcome: ops.Timeout}), nodenet.FelixStale, "running but not answering (its health port 9199: timeout)", "→ timeout"},
		{"killed, rules left", answer(felixRules, ops.Result{Outcome: ops.Refused}), nodenet.FelixStale, "not running (nothing listens on its health port 9199)", "→ connection refused"},
		{"gone with its rules", answer("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n", ops.Result{Outcome: ops.Refused}), nodenet.FelixAbsent, "not running", "no felix chains"},
		{"no answer", ops.Response{}, nodenet.FelixUnknown, "unknown", "node agent on nsl-node2: no answer about felix's rules and health port 9199"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := felixFrom("nsl-node2", 9199, tc.resp)
			if f.State != tc.state || !strings.HasPrefix(f.Detail, tc.detail) {
				t.Errorf("state %s %q, want %s %q", f.State, f.Detail, tc.state, tc.detail)
			}
			if !strings.Contains(strings.Join(f.Evidence, "\n"), tc.evidence) {
				t.Errorf("evidence %q lacks %q", f.Evidence, tc.evidence)
			}
		})
	}
}

func TestStaleFelixIsItsOwnRootCause(t *testing.T) {
	fs := []nodenet.Felix{
		felixOf("nsl-node1", 9099, answer(felixRules, ops.Result{Outcome: ops.Timeout})),
		felixOf("nsl-node2", 9199, answer(felixRules, ops.Result{Outcome: ops.OK, Status: 200})),
	}
	causes := staleFelix(fs)
	if len(causes) != 1 || causes[0].ID != nodenet.IDFelixNotProgramming || causes[0].Subject.Name != "nsl-node1" || causes[0].Status != model.StatusFail {
		t.Fatalf("causes %+v", causes)
	}
	if !strings.Contains(causes[0].Fixes[0].Commands[0], "spec.nodeName=nsl-node1") {
		t.Errorf("the fix does not name the node: %+v", causes[0].Fixes[0])
	}
	if ev := notVerifiedStale(causes); !strings.HasPrefix(ev, "not verified live: felix on nsl-node1 is not programming") {
		t.Errorf("verdict evidence %q", ev)
	}
}

func TestWithFelix(t *testing.T) {
	base := func() *model.Finding {
		return notEnforced(Comparison{Verdict: denied, Subject: &model.Subject{Kind: "Pod", Namespace: "default", Name: "b"},
			Live: Live{Via: "stand-in", Result: tcp(ops.OK)}}, ReachConnected, "TCP connect ok")
	}
	gone := base()
	withFelix(gone, []nodenet.Felix{
		felixOf("nsl-node1", 9099, answer("", ops.Result{Outcome: ops.Refused})),
		felixOf("nsl-node2", 9199, answer("", ops.Result{Outcome: ops.Refused})),
	})
	if !strings.Contains(gone.RootCause, "deny default/a -> default/b on tcp/80, yet the traffic got through: the cluster's CNI is Calico, and on node nsl-node1, nsl-node2 felix") ||
		!strings.Contains(gone.RootCause, "no enforcer at all") {
		t.Errorf("root cause %q", gone.RootCause)
	}
	if len(gone.Fixes) != 3 || !strings.Contains(gone.Fixes[1].Commands[0], "nsl-node2") || !strings.HasPrefix(gone.Fixes[2].Commands[0], "netsleuth check --probe policy") {
		t.Errorf("fixes %+v", gone.Fixes)
	}
	ready := base()
	withFelix(ready, []nodenet.Felix{felixOf("nsl-node1", 9099, answer(felixRules, ops.Result{Outcome: ops.OK, Status: 200}))})
	if !strings.Contains(ready.RootCause, "Felix reports ready on nsl-node1") || !strings.Contains(ready.Fixes[0].Description, "Install or enable") {
		t.Errorf("ready: %q %+v", ready.RootCause, ready.Fixes)
	}
	none := base()
	withFelix(none, nil)
	if none.RootCause != base().RootCause {
		t.Error("without felix facts the finding must not change")
	}
}

func felixOf(node string, port int, resp ops.Response) nodenet.Felix {
	f, _ := felixFrom(node, port, resp)
	return f
}

// A question verified live may read felix through node agents, so the run
// must plan them before its namespace exists: a node agent not planned is
// refused by the restricted namespace, and felix is never read.
func TestLiveQuestionPlansNodeAgents(t *testing.T) {
	for _, c := range []struct {
		o    probes.Options
		node bool
	}{
		{probes.Options{}, false},
		{probes.Options{From: "shop/client", To: "shop/nginx:80"}, true},
		{probes.Options{From: "shop/client", To: "shop/nginx:80", PolicyLive: "ephemeral"}, true},
		{probes.Options{From: "shop/client", To: "shop/nginx:80", PolicyLive: "off"}, false},
	} {
		kinds := probes.AgentKinds([]probes.Probe{New()}, c.o)
		if got := slices.Contains(kinds, probes.AgentNode); got != c.node {
			t.Errorf("options %+v: node agents planned %v (kinds %v), want %v", c.o, got, kinds, c.node)
		}
	}
}

// Node agents that did not start are not a felix that stopped programming:
// the verdict says which nodes, once each, and cites the agent finding.
func TestNotVerifiedNoAgent(t *testing.T) {
	var fs []model.Finding
	for _, n := range []string{"nsl-node1", "nsl-node2"} {
		a := probes.Agent{Kind: probes.AgentNode, Node: n, Namespace: "netsleuth-x", Pod: "netsleuth-node-" + n, Err: errors.New("refused")}
		fs = append(fs, agent.NotStarted("policy", a)...)
	}
	// A cause about the image names no node at all.
	img := probes.Agent{Kind: probes.AgentNode, Node: "nsl-node3", Namespace: "netsleuth-x", Pod: "netsleuth-node-nsl-node3",
		Err: &probes.AgentStartError{Kind: probes.AgentNode, Node: "nsl-node3", Reason: "ErrImageNeverPull", Detail: "no image"}}
	fs = append(fs, agent.NotStarted("policy", img)...)
	ev := notVerifiedNoAgent(fs)
	if !strings.HasPrefix(ev, "not verified live: the node agent on nsl-node1, nsl-node2, nsl-node3 did not start (see agent.not-started)") {
		t.Errorf("verdict evidence %q", ev)
	}
	if strings.Contains(ev, "not programming") {
		t.Errorf("an agent that did not start is blamed on felix: %q", ev)
	}
}
