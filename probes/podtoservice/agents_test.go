package podtoservice

import (
	"testing"

	"github.com/netsleuth/netsleuth/probes"
)

// TestAgentsFollowFrom: pod agents on the node sample stand behind the
// temporary Service, with or without --from; --from with --service sends
// only as the workload, so no agent starts as the run begins.
func TestAgentsFollowFrom(t *testing.T) {
	ps := []probes.Probe{New()}
	for _, tc := range []struct {
		o    probes.Options
		pods bool
	}{
		{probes.Options{}, true},
		{probes.Options{From: "shop/deployment/web"}, true},
		{probes.Options{Service: "shop/api"}, true},
		{probes.Options{From: "shop/deployment/web", Service: "shop/api"}, false},
	} {
		got := probes.SampleAgents(ps, tc.o)
		if pods := len(got[probes.AgentPod]) == 1; pods != tc.pods || len(got) > 1 {
			t.Errorf("options %+v: agents started as the run begins %v, want pod agents %v", tc.o, got, tc.pods)
		}
		if kinds := probes.AgentKinds(ps, tc.o); len(kinds) != 2 && tc.pods || !tc.pods && len(kinds) != 1 {
			t.Errorf("options %+v: planned kinds %v", tc.o, kinds)
		}
	}
}
