package nodeports

import (
	"fmt"
	"slices"
	"strings"

	"github.com/netsleuth/netsleuth/assets"
	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/fix"
)

// Finding IDs of this probe; they are a stable contract for scripts.
const (
	IDOK              = ID + ".ok"
	IDFiltered        = ID + ".filtered"
	IDNotListening    = ID + ".not-listening"
	IDCNIChains       = ID + ".cni-chains"
	IDCNIChainsGone   = ID + ".cni-chains-missing"
	IDSingleNode      = ID + ".single-node"
	IDUnknownProfile  = ID + ".unknown-profile"
	IDAgentNotStarted = ID + ".agent-not-started"
)

// MaxRangeTried is the largest range tried port by port; larger ones are
// tried at their first port (a closed port still answers RST through an
// open firewall).
const MaxRangeTried = 16

// NodeInfo is a node and its roles.
type NodeInfo struct {
	Name, IP string
	Roles    []string // worker, and control-plane / load-balancer when they apply
}

// CNIAgent is the CNI agent pod running on a node.
type CNIAgent struct {
	CNI            assets.CNIPorts
	Namespace, Pod string
}

// Port is one port to try on a node.
type Port struct {
	Rule assets.PortRule
	Role string
	Port int
}

// PortsFor lists the TCP ports to try on n and the UDP rules that cannot be
// tried, from profile's role tables and the CNI's ports, without duplicates.
func PortsFor(profile assets.PortProfile, n NodeInfo, cni *CNIAgent) (tcp []Port, udp []assets.PortRule) {
	seen := map[string]bool{}
	add := func(role string, rs []assets.PortRule) {
		for _, r := range rs {
			if seen[r.Firewalld()] {
				continue
			}
			seen[r.Firewalld()] = true
			if r.Protocol == "UDP" {
				udp = append(udp, r)
				continue
			}
			lo, hi, _ := r.Range()
			if hi-lo+1 > MaxRangeTried {
				hi = lo
			}
			for p := lo; p <= hi; p++ {
				tcp = append(tcp, Port{Rule: r, Role: role, Port: p})
			}
		}
	}
	for _, role := range n.Roles {
		add(role, profile.Roles[role])
	}
	if cni != nil {
		add("cni "+cni.CNI.Name, cni.CNI.Ports)
	}
	return tcp, udp
}

// Attempt is one connection to a node's port from another node.
type Attempt struct {
	Port   Port
	From   probes.Agent
	Result ops.Result
}

// Filtered reports whether the firewall dropped or rejected the attempt:
// anything that did not arrive (an answer, a refusal or a reset did), or
// that a firewall turned back.
func (a Attempt) Filtered() bool { return !a.Result.Arrived() || a.Result.Rejected() }

// Target is everything known about one node.
type Target struct {
	Node     NodeInfo
	Attempts []Attempt
	UDP      []assets.PortRule
	CNI      *CNIAgent
	IPTables string // iptables-save, read when CNI is set
	IPTErr   string
}

// Input is everything Analyze reasons about.
type Input struct {
	Profile    string
	Targets    []Target
	NotStarted []probes.Agent
}

// Analyze returns, per node, the port verdict and the CNI chain verdict.
func Analyze(in Input) []model.Finding {
	var out []model.Finding
	for _, a := range in.NotStarted {
		out = append(out, agent.NotStarted(ID, a)...)
	}
	for _, t := range in.Targets {
		out = append(out, portFindings(in.Profile, t)...)
		if t.CNI != nil {
			out = append(out, chainFinding(t))
		}
	}
	return out
}

func subject(n string) *model.Subject { return &model.Subject{Kind: "Node", Name: n} }

func portFindings(profile string, t Target) []model.Finding {
	var ev []string
	var filtered, silent []Attempt
	for _, a := range t.Attempts {
		ev = append(ev, fmt.Sprintf("%s [%s: %s]", agent.Evidence(a.From, a.Result), a.Port.Role, a.Port.Rule.Purpose))
		switch {
		case a.Filtered():
			filtered = append(filtered, a)
		case a.Port.Rule.Listen && a.Result.Outcome == ops.Refused:
			silent = append(silent, a)
		}
	}
	for _, r := range t.UDP {
		ev = append(ev, fmt.Sprintf("%s (%s) is UDP: not verifiable by a connect, keep it open", r.Firewalld(), r.Purpose))
	}
	node := t.Node.Name
	roles := strings.Join(t.Node.Roles, ", ")
	var out []model.Finding
	if len(filtered) > 0 {
		out = append(out, filteredFinding(profile, t, filtered, ev))
	}
	if len(silent) > 0 {
		var ps []string
		for _, a := range silent {
			ps = append(ps, fmt.Sprintf("%d (%s)", a.Port.Port, a.Port.Rule.Purpose))
		}
		out = append(out, model.Finding{ID: IDNotListening, Status: model.StatusWarn, Subject: subject(node), Evidence: ev,
			Title:     fmt.Sprintf("Nothing listens on %s on node %s", strings.Join(ps, ", "), node),
			RootCause: fmt.Sprintf("Node %s (%s) answers port %s with a RST: the firewall lets it through, but the component is down or bound to another address.", node, roles, strings.Join(ps, ", ")),
			Fixes: []model.Fix{{Description: "See what listens on the node and start or rebind the component:",
				Commands: []string{"ss -ltnp", "systemctl status kubelet", "crictl ps -a"}}}})
	}
	if len(out) == 0 {
		out = append(out, model.Finding{ID: IDOK, Status: model.StatusPass, Subject: subject(node), Evidence: ev,
			Title: fmt.Sprintf("Node %s (%s) accepts its %d required TCP port(s) from other nodes (profile %s)", node, roles, len(t.Attempts), profile)})
	}
	return out
}

func filteredFinding(profile string, t Target, filtered []Attempt, ev []string) model.Finding {
	node := t.Node.Name
	var ports, cmds, ipt []string
	for _, a := range filtered {
		ports = append(ports, fmt.Sprintf("%d/tcp (%s)", a.Port.Port, a.Port.Rule.Purpose))
		c := "firewall-cmd --permanent --zone=public --add-port=" + a.Port.Rule.Firewalld()
		if !slices.Contains(cmds, c) {
			cmds = append(cmds, c)
			ipt = append(ipt, fix.Rule{Chain: "INPUT", Spec: fmt.Sprintf("-p tcp --dport %s -j ACCEPT", strings.ReplaceAll(a.Port.Rule.Ports, "-", ":")), Insert: true}.Ensure())
		}
	}
	for _, r := range t.UDP {
		cmds = append(cmds, "firewall-cmd --permanent --zone=public --add-port="+r.Firewalld())
	}
	cmds = append(cmds, "firewall-cmd --reload")
	fixes := []model.Fix{{Description: "Open the ports on node " + node + " (firewalld; the UDP ports of the table are included since they cannot be tested):", Node: node, Commands: cmds},
		{Description: "Without firewalld, on node " + node + ":", Node: node, Commands: ipt}}
	if t.CNI != nil {
		fixes = append(fixes, model.Fix{Description: "A firewalld reload drops the CNI's iptables chains (seed 001 known issue): restart the CNI agent on the node afterwards:",
			Commands: []string{fmt.Sprintf("kubectl -n %s delete pod %s", t.CNI.Namespace, t.CNI.Pod)}})
	}
	return model.Finding{ID: IDFiltered, Status: model.StatusFail, Subject: subject(node), Evidence: ev,
		Title: fmt.Sprintf("Node %s filters %d required port(s) from other nodes", node, len(filtered)),
		RootCause: fmt.Sprintf("A firewall on or in front of node %s (%s) drops or rejects %s from %s, which profile %s requires open.",
			node, strings.Join(t.Node.Roles, ", "), strings.Join(ports, ", "), filtered[0].From.Node, profile),
		Fixes: fixes}
}

// chainFinding checks that the CNI agent on the node still has its chains.
func chainFinding(t Target) model.Finding {
	c, node := t.CNI, t.Node.Name
	pod := c.Namespace + "/" + c.Pod
	f := model.Finding{ID: IDCNIChains, Status: model.StatusPass, Subject: subject(node)}
	if t.IPTables == "" {
		f.Status, f.Title = model.StatusSkip, fmt.Sprintf("%s's iptables chains on node %s could not be read", c.CNI.Name, node)
		f.Evidence = []string{t.IPTErr}
		return f
	}
	pol, _ := agent.ParseIPTables(t.IPTables)
	var chains []string
	for k := range pol {
		if _, chain, _ := strings.Cut(k, "/"); strings.HasPrefix(chain, c.CNI.ChainPrefix) {
			chains = append(chains, k)
		}
	}
	slices.Sort(chains)
	grep := fmt.Sprintf("node agent on %s: iptables-save | grep -c '^:%s'", node, c.CNI.ChainPrefix)
	if len(chains) > 0 {
		f.Title = fmt.Sprintf("%s agent %s has its %d iptables chain(s) on node %s", c.CNI.Name, pod, len(chains), node)
		f.Evidence = []string{fmt.Sprintf("%s → %d (%s…)", grep, len(chains), chains[0])}
		return f
	}
	f.ID, f.Status = IDCNIChainsGone, model.StatusFail
	f.Title = fmt.Sprintf("%s's iptables chains are gone on node %s although its agent runs there", c.CNI.Name, node)
	f.RootCause = fmt.Sprintf("%s agent pod %s runs on node %s but no %s* chain exists in the node's iptables: a firewalld reload or restart (or an iptables flush) removed them, so pods on %s lose traffic off the node.", c.CNI.Name, pod, node, c.CNI.ChainPrefix, node)
	f.Evidence = []string{grep + " → 0", "CNI agent pod: " + pod}
	f.Fixes = []model.Fix{
		{Description: "Restart the CNI agent on the node; it re-creates its chains at start:", Commands: []string{fmt.Sprintf("kubectl -n %s delete pod %s", c.Namespace, c.Pod)}},
		{Description: "Apply later firewalld changes without a reload dropping the chains: restart the CNI agent after every `firewall-cmd --reload` or firewalld restart (seed 001).",
			Commands: []string{"firewall-cmd --reload && " + fmt.Sprintf("kubectl -n %s delete pod -l %s --field-selector spec.nodeName=%s", c.Namespace, c.CNI.PodLabel, node)}},
	}
	return f
}
