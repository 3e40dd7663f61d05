package assets

import "testing"

func TestKubeletChecks(t *testing.T) {
	k, err := LoadKubeletChecks()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, c := range k.Checks {
		ids[c.ID] = true
	}
	for _, id := range []string{"make-iptables-util-chains", "anonymous-auth", "authorization-mode", "read-only-port", "cgroup-driver"} {
		if !ids[id] {
			t.Errorf("catalogue lacks check %s", id)
		}
	}
	if k.Checks[0].ID != "make-iptables-util-chains" || len(k.Checks[0].Fixes) != 3 {
		t.Errorf("makeIPTablesUtilChains must carry the three remediation methods: %+v", k.Checks[0].Fixes)
	}
}
