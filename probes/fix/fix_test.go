package fix

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// run runs cmd with sh, with KUBELET_CONFIG pointing at file.
func run(t *testing.T, cmd, file string) {
	t.Helper()
	c := exec.Command("sh", "-c", cmd)
	c.Env = append(os.Environ(), KubeletConfigEnv+"="+file)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
}

func TestSetKubeletFieldIsIdempotentAndKeepsTheRest(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yaml")
	orig := "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nclusterDNS:\n- 10.96.0.99\n- 10.96.0.98\nauthentication:\n  anonymous:\n    enabled: true\nmaxPods: 300\n"
	if err := os.WriteFile(file, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	cmds := []string{SetKubeletField("clusterDNS", "[10.96.0.10]"), SetKubeletField("authentication", `{"anonymous":{"enabled":false}}`),
		SetKubeletField("makeIPTablesUtilChains", "true")}
	for _, c := range cmds {
		run(t, c, file)
	}
	once, _ := os.ReadFile(file)
	for _, c := range cmds {
		run(t, c, file)
	}
	twice, _ := os.ReadFile(file)
	if string(once) != string(twice) {
		t.Errorf("not idempotent:\n%s\n---\n%s", once, twice)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(twice, &cfg); err != nil {
		t.Fatalf("the edit broke the YAML: %v\n%s", err, twice)
	}
	if got := cfg["clusterDNS"].([]any); len(got) != 1 || got[0] != "10.96.0.10" {
		t.Errorf("clusterDNS = %v", got)
	}
	if cfg["makeIPTablesUtilChains"] != true || cfg["maxPods"] != float64(300) || cfg["kind"] != "KubeletConfiguration" {
		t.Errorf("fields lost or not set: %v", cfg)
	}
	if a := cfg["authentication"].(map[string]any)["anonymous"].(map[string]any); a["enabled"] != false {
		t.Errorf("authentication = %v", cfg["authentication"])
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("the edit changed the file mode to %v", fi.Mode())
	}
}

func TestFixesNameTheirNodeAndOwnFiles(t *testing.T) {
	s := Sysctl("n1", "net.ipv4.ip_forward", "1")
	if s[0].Node != "n1" || s[0].Commands[0] != "sysctl -w net.ipv4.ip_forward=1" {
		t.Errorf("%+v", s[0])
	}
	if !strings.Contains(s[1].Commands[0], "> /etc/sysctl.d/90-netsleuth-net-ipv4-ip_forward.conf") || strings.Contains(s[1].Commands[0], ">>") {
		t.Errorf("persist must overwrite a file of its own: %s", s[1].Commands[0])
	}
	r := Rule{Table: "nat", Chain: "POSTROUTING", Spec: "-s 10.244.0.0/24 -d 192.168.2.0/24 -j MASQUERADE"}
	if got := r.Ensure(); got != "iptables -t nat -C POSTROUTING -s 10.244.0.0/24 -d 192.168.2.0/24 -j MASQUERADE 2>/dev/null || iptables -t nat -A POSTROUTING -s 10.244.0.0/24 -d 192.168.2.0/24 -j MASQUERADE" {
		t.Errorf("Ensure = %s", got)
	}
	fx := IPTables("n1", "masquerade-10.244.0.0/24-to-192.168.2.0/24", "Masquerade", r)
	if fx[0].Node != "n1" || fx[1].Node != "n1" || !strings.Contains(fx[1].Commands[0], "/etc/systemd/system/netsleuth-masquerade-10-244-0-0-24-to-192-168-2-0-24.service") {
		t.Errorf("%+v", fx)
	}
	if !strings.Contains(fx[2].Manifest, "name: netsleuth-masquerade-10-244-0-0-24-to-192-168-2-0-24") || !strings.Contains(fx[2].Manifest, r.Ensure()) {
		t.Errorf("DaemonSet:\n%s", fx[2].Manifest)
	}
	var ds map[string]any
	if err := yaml.Unmarshal([]byte(fx[2].Manifest), &ds); err != nil {
		t.Errorf("DaemonSet is not YAML: %v", err)
	}
	if rt := Route("n1", "192.168.2.0/24", "10.250.0.254"); rt[0].Commands[0] != "ip route replace 192.168.2.0/24 via 10.250.0.254" {
		t.Errorf("%+v", rt)
	}
}

func TestFlagName(t *testing.T) {
	for field, want := range map[string]string{"clusterDNS": "cluster-dns", "makeIPTablesUtilChains": "make-iptables-util-chains", "readOnlyPort": "read-only-port", "maxPods": "max-pods"} {
		if got := flagName(field); got != want {
			t.Errorf("flagName(%s) = %s, want %s", field, got, want)
		}
	}
}
