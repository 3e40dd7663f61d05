package assets

import "testing"

func TestNodePorts(t *testing.T) {
	n, err := LoadNodePorts()
	if err != nil {
		t.Fatal(err)
	}
	k := n.Profiles["kubeadm"]
	want := map[string][]string{"control-plane": {"6443", "2379-2380", "10250", "10259", "10257"}, "worker": {"10250", "10256", "30000-32767"}}
	for role, ports := range want {
		var got []string
		for _, r := range k.Roles[role] {
			got = append(got, r.Ports)
		}
		if len(got) != len(ports) {
			t.Fatalf("kubeadm %s: %v, want %v", role, got, ports)
		}
		for i := range got {
			if got[i] != ports[i] {
				t.Errorf("kubeadm %s: %v, want %v", role, got, ports)
			}
		}
	}
	if len(n.Profiles["gdc-1.29"].Roles["load-balancer"]) == 0 || len(n.CNIs) < 3 {
		t.Errorf("profiles %v, CNIs %d", n.ProfileNames(), len(n.CNIs))
	}
	lo, hi, err := PortRule{Ports: "30000-32767"}.Range()
	if lo != 30000 || hi != 32767 || err != nil || (PortRule{Protocol: "UDP", Ports: "6081"}).Firewalld() != "6081/udp" {
		t.Errorf("Range: %d %d %v", lo, hi, err)
	}
	for _, bad := range []string{"0", "x", "5-4", "70000"} {
		if _, _, err := (PortRule{Ports: bad}).Range(); err == nil {
			t.Errorf("Range(%q) accepted", bad)
		}
	}
}
