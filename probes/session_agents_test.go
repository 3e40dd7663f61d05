package probes

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
)

// planning is an Agents that records what the session plans, starts and
// deletes, in order.
type planning struct {
	mu    sync.Mutex
	log   []string
	plans [][]AgentKind
	// block makes Start wait until its context ends.
	block bool
}

func (p *planning) record(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, s)
}

func (p *planning) Plan(kinds []AgentKind) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plans = append(p.plans, slices.Clone(kinds))
	p.log = append(p.log, "plan")
}

func (p *planning) Start(ctx context.Context, kind AgentKind, nodes []string) []Agent {
	p.record("start " + string(kind) + " " + strings.Join(nodes, ","))
	if p.block {
		<-ctx.Done()
		p.record("start " + string(kind) + " ended")
	}
	out := make([]Agent, len(nodes))
	for i, n := range nodes {
		out[i] = Agent{Kind: kind, Node: n, Err: context.Cause(ctx)}
	}
	return out
}

func (p *planning) Exec(context.Context, Agent, ops.Request) (ops.Response, error) {
	return ops.Response{}, nil
}
func (p *planning) Prepare(context.Context) error                               { return nil }
func (p *planning) Namespace() string                                           { return "netsleuth-t" }
func (p *planning) Leftovers(context.Context, *kube.Snapshot) ([]string, error) { return nil, nil }
func (p *planning) Close(context.Context) error                                 { p.record("close"); return nil }
func (p *planning) entries() []string                                           { p.mu.Lock(); defer p.mu.Unlock(); return slices.Clone(p.log) }
func (p *planning) planned() [][]AgentKind {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.plans)
}
func nothing(context.Context, *Env, Recorder) error { return nil }
func writes() []model.Permission {
	return []model.Permission{{Resource: "pods", Verbs: []string{"create"}}}
}

// threeNodes is a cluster of two Ready nodes and one NotReady.
func threeNodes() *fake.Clientset {
	nodes := kubetest.SyntheticNodes(3, func(i int) bool { return i < 2 })
	objs := make([]runtime.Object, len(nodes))
	for i := range nodes {
		objs[i] = &nodes[i]
	}
	return fake.NewClientset(objs...)
}

// TestSessionStartsDeclaredAgentsAsTheRunBegins: the session plans every
// kind its probes (the TUI's extras included) may start, before any agent,
// then starts on the Ready node sample the kinds the first run's probes
// declare for the whole sample, announced, without waiting for the probes;
// kinds a probe starts only where it picks (here peers and node agents of
// "matrix") wait for the probe.
func TestSessionStartsDeclaredAgentsAsTheRunBegins(t *testing.T) {
	agents := &planning{}
	ps := []Probe{
		fakeProbe{id: "static", run: nothing},
		fakeProbe{id: "matrix", run: nothing, rbac: writes(), agents: []model.AgentUse{{Kind: AgentPod, Sample: true}, {Kind: AgentPeer}}},
		fakeProbe{id: "sysctl", run: nothing, rbac: writes(), agents: []model.AgentUse{{Kind: AgentNode, Sample: true}}},
	}
	extra := fakeProbe{id: "ext", run: nothing, rbac: writes(), agents: []model.AgentUse{{Kind: AgentPeer, Sample: true}}}
	seen := &events{}
	s := Start(context.Background(), ps, &Env{RunID: "r1", Kube: threeNodes(), Agents: agents}, SessionOptions{Sink: seen, Extra: []Probe{extra}})
	s.Wait()
	<-s.agentsDone
	got := agents.entries()
	if len(got) != 3 || got[0] != "plan" || !slices.Contains(got, "start pod node-0000,node-0001") || !slices.Contains(got, "start node node-0000,node-0001") {
		t.Errorf("agents' calls %q; want plan, then pod and node agents on the two Ready nodes", got)
	}
	if plans := agents.planned(); len(plans) != 1 || !sameKinds(plans[0], AgentPod, AgentPeer, AgentNode) {
		t.Errorf("plans %v, want one of pod, peer and node", plans)
	}
	notes := seen.of("")
	if len(notes) != 1 || notes[0].Type != model.EventProgress || notes[0].RunID != "r1" ||
		!strings.Contains(notes[0].Message, "privileged node agents (hostNetwork, host / mounted read-only) for sysctl") ||
		!strings.Contains(notes[0].Message, "pod agents for matrix") || !strings.Contains(notes[0].Message, "netsleuth-t") {
		t.Errorf("announcement %+v", notes)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSessionWithoutActiveProbesPlansNothing: a run whose probes declare
// no agent, or whose active probes --read-only left out, plans, starts and
// announces nothing.
func TestSessionWithoutActiveProbesPlansNothing(t *testing.T) {
	active := fakeProbe{id: "active", run: nothing, rbac: writes(), agents: []model.AgentUse{{Kind: AgentNode, Sample: true}}}
	for name, ps := range map[string][]Probe{
		"static only": {fakeProbe{id: "static", run: nothing}},
		"read-only":   ReadOnly([]Probe{fakeProbe{id: "static", run: nothing}, active}, Options{}),
	} {
		agents := &planning{}
		seen := &events{}
		s := Start(context.Background(), ps, &Env{Kube: threeNodes(), Agents: agents}, SessionOptions{Sink: seen})
		s.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got := agents.entries(); !slices.Equal(got, []string{"close"}) {
			t.Errorf("%s: agents' calls %q, want only the final close", name, got)
		}
		if notes := seen.of(""); len(notes) != 0 {
			t.Errorf("%s: session notes %+v", name, notes)
		}
	}
}

// TestSessionCloseWaitsForTheEarlyAgents: Close stops the agents the
// session started as the run began and deletes the agents only after that
// start has returned, so no pod is created after the deletion.
func TestSessionCloseWaitsForTheEarlyAgents(t *testing.T) {
	agents := &planning{block: true}
	p := fakeProbe{id: "sysctl", run: nothing, rbac: writes(), agents: []model.AgentUse{{Kind: AgentNode, Sample: true}}}
	s := Start(context.Background(), []Probe{p}, &Env{Kube: threeNodes(), Agents: agents}, SessionOptions{})
	s.Wait()
	for deadline := time.Now().Add(5 * time.Second); !slices.Contains(agents.entries(), "start node node-0000,node-0001"); {
		if time.Now().After(deadline) {
			t.Fatalf("the node agents were not started: %q", agents.entries())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got := agents.entries()
	if i, j := slices.Index(got, "start node ended"), slices.Index(got, "close"); i < 0 || j < i {
		t.Errorf("agents' calls %q: the early start must end before the agents are deleted", got)
	}
}

func sameKinds(got []AgentKind, want ...AgentKind) bool {
	return len(got) == len(want) && !slices.ContainsFunc(want, func(k AgentKind) bool { return !slices.Contains(got, k) })
}
