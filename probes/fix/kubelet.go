package fix

import (
	"fmt"
	"strings"

	"github.com/netsleuth/netsleuth/model"
)

// KubeletConfigEnv names the variable the kubelet fixes read the kubelet's
// configuration file from; unset, they use kubeadm's path.
const KubeletConfigEnv = "KUBELET_CONFIG"

// DefaultKubeletConfig is where kubeadm puts the file the kubelet reads
// with --config.
const DefaultKubeletConfig = "/var/lib/kubelet/config.yaml"

// SetKubeletField is the idempotent command that sets one top-level field
// of the kubelet's configuration file to value (YAML, e.g. "true" or
// "[10.96.0.10]"): it drops the field's old line and any lines continuing it,
// appends the new one, and rewrites the file in place.
func SetKubeletField(field, value string) string {
	awk := fmt.Sprintf(`awk -v k=%s -v v=%s 'index($0, k ":") == 1 {skip = 1; next} skip && /^([ \t]|- )/ {next} {skip = 0; print} END {print k ": " v}'`,
		shellQuote(field), shellQuote(value))
	return fmt.Sprintf(`f=${%s:-%s}; %s "$f" > "$f.netsleuth" && cat "$f.netsleuth" > "$f" && rm -f "$f.netsleuth"`,
		KubeletConfigEnv, DefaultKubeletConfig, awk)
}

// Kubelet sets field to value in the kubelet's configuration on node and
// restarts the kubelet, then checks through configz that it took effect.
func Kubelet(node, field, value string) []model.Fix {
	return []model.Fix{
		{Description: fmt.Sprintf("Set %s: %s in the kubelet's configuration file and restart the kubelet "+
			"(the file is the kubelet's --config, %s on kubeadm nodes: set %s to use another; a --%s flag on the kubelet's command line would override it):",
			field, value, DefaultKubeletConfig, KubeletConfigEnv, flagName(field)),
			Node: node, Commands: []string{SetKubeletField(field, value), "systemctl restart kubelet"}},
		{Description: "Check that the kubelet now runs with it:",
			Commands: []string{fmt.Sprintf(`kubectl get --raw /api/v1/nodes/%s/proxy/configz | grep -o '"%s":[^,}]*'`, node, field)}},
	}
}

// flagName is the kubelet flag for a configuration field: clusterDNS → cluster-dns.
func flagName(field string) string {
	var b strings.Builder
	for i, r := range field {
		if r >= 'A' && r <= 'Z' {
			if i > 0 && field[i-1] >= 'a' && field[i-1] <= 'z' {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'" }
