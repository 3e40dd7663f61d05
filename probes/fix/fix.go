// Package fix builds the fixes shared diagnoses hand out, so one fact gets
// the same commands wherever it is found. Every command is safe to paste:
// running it twice changes nothing the second time, and a setting that must
// survive a reboot goes into a file of netsleuth's own, never appended to a
// file other settings live in.
package fix

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/netsleuth/netsleuth/model"
)

// The directories persistent fixes write their own files into.
const (
	SysctlDir  = "/etc/sysctl.d"
	ModulesDir = "/etc/modules-load.d"
	UnitDir    = "/etc/systemd/system"
)

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// fileName turns a setting into a file or unit name part: "net.ipv4.ip_forward" → "net-ipv4-ip_forward".
func fileName(s string) string {
	return strings.Trim(unsafeName.ReplaceAllString(strings.ReplaceAll(s, ".", "-"), "-"), "-")
}

// SysctlFile is the file Sysctl persists key in.
func SysctlFile(key string) string {
	return fmt.Sprintf("%s/90-netsleuth-%s.conf", SysctlDir, fileName(key))
}

// Sysctl sets key=value now on node, then persists it in a file of its own.
func Sysctl(node, key, value string) []model.Fix {
	file := SysctlFile(key)
	return []model.Fix{
		{Description: fmt.Sprintf("Set %s=%s now:", key, value), Node: node,
			Commands: []string{fmt.Sprintf("sysctl -w %s=%s", key, value)}},
		{Description: fmt.Sprintf("Keep it across reboots in a file of its own (%s):", file), Node: node,
			Commands: []string{fmt.Sprintf("printf '%%s\\n' '%s = %s' > %s", key, value, file), "sysctl -p " + file}},
	}
}

// Module loads a kernel module now on node and at every boot.
func Module(node, module string) model.Fix {
	file := fmt.Sprintf("%s/90-netsleuth-%s.conf", ModulesDir, fileName(module))
	return model.Fix{Description: fmt.Sprintf("Load %s now and at every boot (%s):", module, file), Node: node,
		Commands: []string{"modprobe " + module, fmt.Sprintf("printf '%%s\\n' %s > %s", module, file)}}
}

// Rule is one iptables rule: table, chain and the match and target arguments.
type Rule struct {
	Table, Chain, Spec string
	// Insert puts the rule first in the chain (-I) instead of last (-A).
	Insert bool
}

// Ensure is the idempotent command that adds r unless it is there already.
func (r Rule) Ensure() string {
	add := "-A"
	if r.Insert {
		add = "-I"
	}
	t := ""
	if r.Table != "" && r.Table != "filter" {
		t = "-t " + r.Table + " "
	}
	return fmt.Sprintf("iptables %s-C %s %s 2>/dev/null || iptables %s%s %s %s", t, r.Chain, r.Spec, t, add, r.Chain, r.Spec)
}

// Delete is the command that removes r again (for undoing a fix).
func (r Rule) Delete() string {
	t := ""
	if r.Table != "" && r.Table != "filter" {
		t = "-t " + r.Table + " "
	}
	return fmt.Sprintf("while iptables %s-C %s %s 2>/dev/null; do iptables %s-D %s %s; done", t, r.Chain, r.Spec, t, r.Chain, r.Spec)
}

// IPTables adds rules now on node, then keeps them with a boot unit of their
// own (name is the unit's name after "netsleuth-"), then offers a DaemonSet
// that keeps them on every node.
func IPTables(node, name, what string, rules ...Rule) []model.Fix {
	cmds := make([]string, len(rules))
	for i, r := range rules {
		cmds[i] = r.Ensure()
	}
	return []model.Fix{
		{Description: what + ":", Node: node, Commands: cmds},
		Unit(node, name, what, cmds),
		DaemonSet(name, what, cmds),
	}
}

// Route makes the route to dst go via gateway now on node, and at boot.
func Route(node, dst, via string) []model.Fix {
	cmd := fmt.Sprintf("ip route replace %s via %s", dst, via)
	what := fmt.Sprintf("Route %s via %s", dst, via)
	return []model.Fix{
		{Description: what + ":", Node: node, Commands: []string{cmd}},
		Unit(node, "route-"+dst, what, []string{cmd}),
	}
}

// UnitName is the systemd unit Unit writes for name.
func UnitName(name string) string { return "netsleuth-" + fileName(name) + ".service" }

// Unit persists cmds as a oneshot systemd unit in a file of its own that
// runs them at every boot (after the network is up), and runs it now.
func Unit(node, name, what string, cmds []string) model.Fix {
	unit := UnitName(name)
	script := strings.ReplaceAll(strings.Join(cmds, "; "), "'", `'"'"'`)
	body := strings.Join([]string{
		"[Unit]", "Description=netsleuth fix: " + what, "Wants=network-online.target", "After=network-online.target", "",
		"[Service]", "Type=oneshot", "ExecStart=/bin/sh -c '" + script + "'", "",
		"[Install]", "WantedBy=multi-user.target"}, "\n")
	return model.Fix{
		Description: fmt.Sprintf("Keep it across reboots with a unit of its own (%s/%s):", UnitDir, unit), Node: node,
		Commands: []string{
			fmt.Sprintf("cat > %s/%s <<'EOF'\n%s\nEOF", UnitDir, unit, body),
			"systemctl daemon-reload && systemctl enable --now " + unit,
		},
	}
}

// DaemonSet keeps cmds applied on every node: it runs them, then again
// every minute, so a node that loses the setting gets it back.
func DaemonSet(name, what string, cmds []string) model.Fix {
	ds := "netsleuth-" + strings.ToLower(fileName(name))
	if len(ds) > 60 {
		ds = ds[:60]
	}
	ds = strings.TrimRight(strings.ReplaceAll(ds, ".", "-"), "-_")
	ds = strings.ReplaceAll(ds, "_", "-")
	var script strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&script, "            %s\n", c)
	}
	return model.Fix{Description: "Or keep it applied on every node with this DaemonSet (" + what + "; it re-applies every minute):",
		Manifest: `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: ` + ds + `
  namespace: kube-system
  labels: {app.kubernetes.io/name: ` + ds + `}
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: ` + ds + `}
  template:
    metadata:
      labels: {app.kubernetes.io/name: ` + ds + `}
    spec:
      hostNetwork: true
      tolerations: [{operator: Exists}]
      containers:
      - name: apply
        # any image with iptables, ip and sysctl that matches the node's iptables backend
        image: registry.k8s.io/kube-proxy:v1.36.3
        securityContext: {privileged: true}
        command: ["/bin/sh", "-c"]
        args:
        - |
          while true; do
` + script.String() + `            sleep 60
          done
`}
}
