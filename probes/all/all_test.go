package all

import "testing"

func TestProbesAreUniqueAndDescribed(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Probes() {
		i := p.Info()
		if i.ID == "" || i.Title == "" || i.Scenario == "" || i.Description == "" || len(i.RBAC) == 0 {
			t.Errorf("probe %q has incomplete info: %+v", i.ID, i)
		}
		if seen[i.ID] {
			t.Errorf("duplicate probe id %q", i.ID)
		}
		seen[i.ID] = true
	}
}
