package kubelet

import (
	"testing"

	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
)

// FuzzAnalyze decodes two arbitrary configz bodies the way the probe does
// (DecodeConfigz, then back to generic JSON) for two nodes and runs every
// check on them. Each node gets one finding per check plus the cluster DNS
// one, or a single one when its configz is unreadable, and every finding
// keeps the report contract.
func FuzzAnalyze(f *testing.F) {
	wrap := func(cfg string) []byte { return []byte(`{"kubeletconfig":` + cfg + `}`) }
	f.Add(wrap(labConfig), wrap(labConfig))
	f.Add(wrap(`{"cgroupDriver":"systemd","clusterDNS":["169.254.20.10"],"clusterDomain":"cluster.local.","authentication":{"anonymous":{"enabled":true}},"authorization":{"mode":"AlwaysAllow"},"readOnlyPort":10255}`), wrap(labConfig))
	f.Add(wrap(`{"clusterDNS":[],"makeIPTablesUtilChains":false,"maxPods":0,"podCIDR":"10.244.9.0/24"}`), []byte(`{"kubeletconfig":null}`))
	f.Add(wrap(`{}`), []byte(`not json`))
	f.Fuzz(func(t *testing.T, raw1, raw2 []byte) {
		in := input(decoded(t, "n1", raw1), decoded(t, "n2", raw2))
		got := Analyze(in)
		want := 0
		for _, n := range in.Nodes {
			if n.Config == nil {
				want++
			} else {
				want += len(in.Checks) + 1
			}
		}
		if len(got) != want {
			t.Fatalf("%d findings, want %d", len(got), want)
		}
		kubetest.CheckContract(t, got)
	})
}

// decoded is the probe's view of a node whose configz answered raw.
func decoded(t *testing.T, name string, raw []byte) Node {
	n := Node{Name: name, PodCIDRs: []string{"10.244.1.0/24"}, Runtime: "containerd://1.7.2"}
	cfg, err := kube.DecodeConfigz(raw)
	if err != nil {
		n.ConfigErr = err.Error()
		return n
	}
	if n.Config, err = generic(cfg); err != nil {
		t.Fatalf("a decoded configuration does not encode: %v", err)
	}
	return n
}
