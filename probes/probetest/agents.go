package probetest

import (
	"context"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// Agents is a probes.Agents that starts nothing, answers every exec with
// an empty response and finds no leftovers. A test's fake embeds it and
// defines only the methods it scripts.
type Agents struct{}

func (Agents) Start(context.Context, probes.AgentKind, []string) []probes.Agent { return nil }
func (Agents) Exec(context.Context, probes.Agent, ops.Request) (ops.Response, error) {
	return ops.Response{}, nil
}
func (Agents) Namespace() string                                           { return "netsleuth-test" }
func (Agents) Prepare(context.Context) error                               { return nil }
func (Agents) Leftovers(context.Context, *kube.Snapshot) ([]string, error) { return nil, nil }

var _ probes.Agents = Agents{}
