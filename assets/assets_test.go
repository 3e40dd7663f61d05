package assets

import "testing"

func TestRuntimeSocketsLoad(t *testing.T) {
	s, err := LoadRuntimeSockets()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Sockets) < 6 || s.Aliases["/var/run"] != "/run" {
		t.Fatalf("unexpected runtime sockets: %+v", s)
	}
	for _, k := range s.Sockets {
		if k.Path == "" || k.Runtime == "" {
			t.Errorf("incomplete socket entry %+v", k)
		}
	}
}

func TestPodCIDRTable(t *testing.T) {
	tb, err := LoadPodCIDRTable()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range tb.Rows {
		if 1<<(32-r.PrefixLength) != r.Addresses {
			t.Errorf("row %+v: /%d does not hold %d addresses", r, r.PrefixLength, r.Addresses)
		}
	}
	hostBits := []struct{ maxPods, want int }{
		{1, 6}, {32, 6}, {33, 7}, {64, 7}, {65, 8}, {110, 8}, {128, 8}, {129, 9}, {250, 9}, {251, 9}, {257, 10}, {600, 11},
	}
	for _, c := range hostBits {
		if got := tb.HostBitsFor(c.maxPods); got != c.want {
			t.Errorf("HostBitsFor(%d) = %d, want %d", c.maxPods, got, c.want)
		}
	}
	maxPods := []struct{ hostBits, want int }{{5, 0}, {6, 32}, {8, 128}, {9, 250}, {10, 512}, {64, 1 << 29}}
	for _, c := range maxPods {
		if got := tb.MaxPodsFor(c.hostBits); got != c.want {
			t.Errorf("MaxPodsFor(%d) = %d, want %d", c.hostBits, got, c.want)
		}
	}
	if tb.WarnRatio <= 0 || tb.WarnRatio >= 1 {
		t.Errorf("warnRatio %v out of (0,1)", tb.WarnRatio)
	}
}
