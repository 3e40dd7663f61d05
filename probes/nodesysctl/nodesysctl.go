// Package nodesysctl is the node-sysctl probe (scenario J, seed 004 §2.3):
// a node agent on every node reads net.ipv4.ip_forward,
// net.bridge.bridge-nf-call-iptables and the conntrack table's use against
// its maximum, and each wrong one is a finding with the command that fixes it
// and the file that keeps it fixed.
package nodesysctl

import (
	"context"
	"fmt"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/nodenet"
)

// ID is the probe's identifier for --probe.
const ID = "node-sysctl"

// Finding IDs: the node.* IDs of the shared node diagnosis (nodenet), which
// every probe that meets these facts cites, plus this one.
const IDAgentNotStarted = ID + ".agent-not-started"

type probe struct{}

// New returns the node-sysctl probe.
func New() probes.Probe { return probe{} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID: ID, Title: "Node kernel settings: ip_forward, bridge-nf-call-iptables, conntrack", Scenario: "J",
		Description: "Reads, through an announced privileged node agent on every node, net.ipv4.ip_forward, " +
			"net.bridge.bridge-nf-call-iptables (absent when br_netfilter is not loaded) and nf_conntrack_count " +
			"against nf_conntrack_max (warn at 80 %, fail at 95 %), with the sysctl, modprobe and persistence fixes.",
		RBAC:    model.MergePermissions(agent.RBAC, kube.RBACNodes),
		Default: true,
		Agents:  []model.AgentUse{{Kind: model.AgentNode, Sample: true}},
	}
}

// Request is what each node agent reads.
func Request() ops.Request {
	return ops.Request{Ops: []ops.Op{{Kind: ops.ReadFiles, Paths: []string{
		agent.SysIPForward, agent.SysBridgeNF, agent.SysConntrackCnt, agent.SysConntrackMax}}}}
}

func (probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("listing nodes")
	sample, err := env.AgentNodes(ctx)
	if err != nil {
		return err
	}
	agent.ReportLeftovers(ctx, env, rec, ID)
	probes.RecordCoverage(rec, ID, sample)
	names := sample.Names()
	nodeAgents, failed, err := agent.StartNodes(ctx, env, rec, "read ip_forward, bridge-nf-call-iptables and conntrack usage", names)
	if err != nil {
		return err
	}
	for _, a := range failed {
		for _, f := range agent.NotStarted(ID, a) {
			rec.Finding(f)
		}
	}
	rec.Stage(fmt.Sprintf("reading kernel settings on %d node(s)", len(nodeAgents)))
	resps, errs := probes.FanOut(ctx, len(nodeAgents), 0, func(ctx context.Context, i int) (ops.Response, error) {
		return env.Agents.Exec(ctx, nodeAgents[i], Request())
	})
	if err := probes.FirstError(errs); err != nil {
		return err
	}
	for i, a := range nodeAgents {
		if len(resps[i].Results) != 1 {
			return fmt.Errorf("%s answered %d results, want 1", a.Ref(), len(resps[i].Results))
		}
		for _, f := range Diagnose(a.Node, resps[i].Results[0]) {
			rec.Finding(f)
		}
	}
	return nil
}

// Diagnose asks the shared node diagnosis about what a node agent read: one
// finding per setting.
func Diagnose(node string, r ops.Result) []model.Finding {
	n := nodenet.Node{Name: node, Facts: agent.NodeFacts{Node: node, Sysctls: r.Files}}
	if r.Error != "" {
		n.Facts.Errors = []string{"read errors: " + r.Error}
	}
	return []model.Finding{nodenet.IPForward(n), nodenet.BridgeNF(n), nodenet.Conntrack(n)}
}
