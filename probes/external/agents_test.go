package external

import (
	"testing"

	"github.com/netsleuth/netsleuth/probes"
)

// TestAgentsFollowFrom: without --from the run starts pod and node agents
// on the node sample as it begins; with --from it starts none early and
// plans only the node agent on the workload's node.
func TestAgentsFollowFrom(t *testing.T) {
	ps := []probes.Probe{New()}
	o := probes.Options{Targets: []string{"192.0.2.1:443"}}
	if got := probes.SampleAgents(ps, o); len(got[probes.AgentPod]) != 1 || len(got[probes.AgentNode]) != 1 {
		t.Errorf("without --from the sample's agents are %v, want pod and node agents", got)
	}
	o.From = "shop/deployment/web"
	if got := probes.SampleAgents(ps, o); len(got) != 0 {
		t.Errorf("with --from the run starts %v as it begins, want nothing", got)
	}
	if got := probes.AgentKinds(ps, o); len(got) != 1 || got[0] != probes.AgentNode {
		t.Errorf("with --from the run plans %v, want node agents only", got)
	}
}
