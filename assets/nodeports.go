package assets

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// PortRule is one row of a port table: a protocol and a port or range.
type PortRule struct {
	Protocol string `json:"protocol"` // TCP or UDP
	Ports    string `json:"ports"`    // "6443" or "2379-2380"
	Purpose  string `json:"purpose"`
	UsedBy   string `json:"usedBy"`
	// Listen marks ports a component must answer on.
	Listen bool `json:"listen,omitempty"`
}

// Range returns the first and last port of the rule.
func (p PortRule) Range() (lo, hi int, err error) {
	a, b, isRange := strings.Cut(p.Ports, "-")
	if lo, err = strconv.Atoi(a); err != nil {
		return 0, 0, fmt.Errorf("port %q: %w", p.Ports, err)
	}
	hi = lo
	if isRange {
		if hi, err = strconv.Atoi(b); err != nil {
			return 0, 0, fmt.Errorf("port %q: %w", p.Ports, err)
		}
	}
	if lo < 1 || hi > 65535 || hi < lo {
		return 0, 0, fmt.Errorf("port %q out of range", p.Ports)
	}
	return lo, hi, nil
}

// Firewalld is the rule as firewall-cmd writes it: "2379-2380/tcp".
func (p PortRule) Firewalld() string { return p.Ports + "/" + strings.ToLower(p.Protocol) }

// PortProfile is one distribution's port tables, per role.
type PortProfile struct {
	Description string                `json:"description"`
	Roles       map[string][]PortRule `json:"roles"`
}

// CNIPorts describes one CNI: how to find its agent pods, the iptables
// chains they install and the ports they need between nodes.
type CNIPorts struct {
	Name        string     `json:"name"`
	PodLabel    string     `json:"podLabel"`
	ChainPrefix string     `json:"chainPrefix"`
	Ports       []PortRule `json:"ports"`
}

// NodePorts is the content of node-ports.yaml.
type NodePorts struct {
	DefaultProfile string                 `json:"defaultProfile"`
	RoleLabels     map[string][]string    `json:"roleLabels"`
	Profiles       map[string]PortProfile `json:"profiles"`
	CNIs           []CNIPorts             `json:"cnis"`
}

// ProfileNames lists the profiles, sorted.
func (n NodePorts) ProfileNames() []string {
	var out []string
	for k := range n.Profiles {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// LoadNodePorts parses node-ports.yaml and checks every port.
func LoadNodePorts() (NodePorts, error) {
	var n NodePorts
	if err := load("node-ports.yaml", &n); err != nil {
		return n, err
	}
	if _, ok := n.Profiles[n.DefaultProfile]; !ok {
		return n, fmt.Errorf("node-ports.yaml: default profile %q is not defined", n.DefaultProfile)
	}
	var rules []PortRule
	for _, p := range n.Profiles {
		for _, rs := range p.Roles {
			rules = append(rules, rs...)
		}
	}
	for _, c := range n.CNIs {
		rules = append(rules, c.Ports...)
	}
	for _, r := range rules {
		if _, _, err := r.Range(); err != nil {
			return n, fmt.Errorf("node-ports.yaml: %w", err)
		}
		if r.Protocol != "TCP" && r.Protocol != "UDP" {
			return n, fmt.Errorf("node-ports.yaml: protocol %q", r.Protocol)
		}
	}
	return n, nil
}

// MustNodePorts is LoadNodePorts, panicking on a broken embedded file.
func MustNodePorts() NodePorts {
	n, err := LoadNodePorts()
	if err != nil {
		panic(err)
	}
	return n
}
