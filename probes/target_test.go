package probes

import "testing"

func TestTargetKind(t *testing.T) {
	for s, want := range map[string]string{
		"192.168.2.10": TargetIP, "192.168.2.10:80": TargetIP, "192.168.2.0/24": TargetCIDR,
		"ext.netsleuth.test": TargetName, "kubernetes.io.": TargetName, "example.com:443": TargetName,
		"notanip": "", "999.1.1.1": "", "c/d:99999": "", "10.0.0.1:0": "", "10.0.0.1:http": "", "::1": "", "fd00::/64": "", "bad_label.example": "",
	} {
		got, err := TargetKind(s)
		if got != want || (want == "" && err == nil) {
			t.Errorf("TargetKind(%q) = %q, %v; want %q", s, got, err, want)
		}
	}
}
