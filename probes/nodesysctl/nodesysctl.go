// Package nodesysctl is the node-sysctl probe (scenario J, seed 004 §2.3):
// a node agent on every node reads net.ipv4.ip_forward,
// net.bridge.bridge-nf-call-iptables and the conntrack table's use against
// its maximum, and each wrong one is a finding with the command that fixes it
// and the file that keeps it fixed.
package nodesysctl

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// ID is the probe's identifier for --probe.
const ID = "node-sysctl"

// Finding IDs of this probe; they are a stable contract for scripts.
const (
	IDIPForward       = ID + ".ip-forward"
	IDBridgeNF        = ID + ".bridge-nf-call-iptables"
	IDConntrack       = ID + ".conntrack"
	IDAgentNotStarted = ID + ".agent-not-started"
)

// Conntrack thresholds: share of nf_conntrack_max in use.
const (
	ConntrackWarn = 0.80
	ConntrackFail = 0.95
)

// MaxNodes bounds the nodes read in one run.
const MaxNodes = 50

// persistFile is where the fixes persist sysctls.
const persistFile = "/etc/sysctl.d/99-kubernetes.conf"

type probe struct{}

// New returns the node-sysctl probe.
func New() probes.Probe { return probe{} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID: ID, Title: "Node kernel settings: ip_forward, bridge-nf-call-iptables, conntrack", Scenario: "J",
		Description: "Reads, through an announced privileged node agent on every node, net.ipv4.ip_forward, " +
			"net.bridge.bridge-nf-call-iptables (absent when br_netfilter is not loaded) and nf_conntrack_count " +
			"against nf_conntrack_max (warn at 80 %, fail at 95 %), with the sysctl, modprobe and persistence fixes.",
		RBAC:    agent.RBAC,
		Default: true,
	}
}

// Request is what each node agent reads.
func Request() ops.Request {
	return ops.Request{Ops: []ops.Op{{Kind: ops.ReadFiles, Paths: []string{
		agent.SysIPForward, agent.SysBridgeNF, agent.SysConntrackCnt, agent.SysConntrackMax}}}}
}

func (probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("listing nodes")
	all, err := kube.Nodes(ctx, env.Kube)
	if err != nil {
		return err
	}
	agent.ReportLeftovers(ctx, env, rec, ID)
	names := readyNodes(all)
	nodeAgents, failed, err := agent.StartNodes(ctx, env, rec, "read ip_forward, bridge-nf-call-iptables and conntrack usage", names)
	if err != nil {
		return err
	}
	for _, a := range failed {
		rec.Finding(agent.NotStartedFinding(ID, a))
	}
	rec.Stage(fmt.Sprintf("reading kernel settings on %d node(s)", len(nodeAgents)))
	for _, a := range nodeAgents {
		resp, err := env.Agents.Exec(ctx, a, Request())
		if err != nil {
			return err
		}
		for _, f := range Diagnose(a, resp.Results[0]) {
			rec.Finding(f)
		}
	}
	return nil
}

func readyNodes(all []corev1.Node) []string {
	var out []string
	for _, n := range all {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				out = append(out, n.Name)
			}
		}
	}
	slices.Sort(out)
	return out[:min(len(out), MaxNodes)]
}

// Diagnose turns what a node agent read into one finding per setting.
func Diagnose(a probes.Agent, r ops.Result) []model.Finding {
	cat := func(path string) string {
		v, ok := r.Files[path]
		if !ok {
			v = "absent"
		}
		return fmt.Sprintf("%s: cat %s → %s", a.Ref(), path, v)
	}
	subj := &model.Subject{Kind: "Node", Name: a.Node}
	out := []model.Finding{ipForward(a.Node, r.Files[agent.SysIPForward], cat(agent.SysIPForward)), bridgeNF(a.Node, r.Files, cat(agent.SysBridgeNF))}
	out = append(out, conntrack(a.Node, r.Files, []string{cat(agent.SysConntrackCnt), cat(agent.SysConntrackMax)}))
	for i := range out {
		out[i].Subject = subj
		if r.Error != "" && out[i].Status != model.StatusPass {
			out[i].Evidence = append(out[i].Evidence, "read errors: "+r.Error)
		}
	}
	return out
}

func persist(kv string) model.Fix {
	return model.Fix{Description: "Persist it across reboots:", Commands: []string{
		fmt.Sprintf("echo '%s' >> %s", kv, persistFile), "sysctl --system"}}
}

func ipForward(node, v, ev string) model.Finding {
	f := model.Finding{ID: IDIPForward, Evidence: []string{ev}}
	switch v {
	case "1":
		f.Status, f.Title = model.StatusPass, "net.ipv4.ip_forward is 1 on node "+node
	case "":
		f.Status, f.Title = model.StatusError, "net.ipv4.ip_forward could not be read on node "+node
		f.RootCause = fmt.Sprintf("The node agent on %s could not read %s, so forwarding is unknown.", node, agent.SysIPForward)
		f.Fixes = []model.Fix{{Description: "Read it on the node:", Commands: []string{"sysctl net.ipv4.ip_forward"}}}
	default:
		f.Status, f.Title = model.StatusFail, "net.ipv4.ip_forward is "+v+" on node "+node
		f.RootCause = fmt.Sprintf("net.ipv4.ip_forward is %s on node %s, so it does not route pod traffic: pods there cannot reach other nodes, Services backed elsewhere or anything outside.", v, node)
		f.Fixes = []model.Fix{{Description: "Turn forwarding on, on node " + node + ":", Commands: []string{"sysctl -w net.ipv4.ip_forward=1"}},
			persist("net.ipv4.ip_forward = 1")}
	}
	return f
}

func bridgeNF(node string, files map[string]string, ev string) model.Finding {
	f := model.Finding{ID: IDBridgeNF, Evidence: []string{ev}}
	v, ok := files[agent.SysBridgeNF]
	load := model.Fix{Description: "Load br_netfilter and turn it on, on node " + node + ":",
		Commands: []string{"modprobe br_netfilter", "sysctl -w net.bridge.bridge-nf-call-iptables=1"}}
	keep := model.Fix{Description: "Persist both across reboots:", Commands: []string{
		"echo br_netfilter > /etc/modules-load.d/k8s.conf",
		fmt.Sprintf("echo 'net.bridge.bridge-nf-call-iptables = 1' >> %s", persistFile), "sysctl --system"}}
	switch {
	case v == "1":
		f.Status, f.Title = model.StatusPass, "net.bridge.bridge-nf-call-iptables is 1 on node "+node
	case !ok:
		f.Status, f.Title = model.StatusWarn, "br_netfilter is not loaded on node "+node
		f.RootCause = fmt.Sprintf("%s does not exist on node %s because br_netfilter is not loaded: with a bridge-based CNI (bridge, flannel, kubenet) traffic between pods on one bridge skips iptables, so Services and NetworkPolicies break for same-node pods (eBPF CNIs such as Cilium do not need it).", agent.SysBridgeNF, node)
		f.Fixes = []model.Fix{load, keep}
	default:
		f.Status, f.Title = model.StatusFail, "net.bridge.bridge-nf-call-iptables is "+v+" on node "+node
		f.RootCause = fmt.Sprintf("net.bridge.bridge-nf-call-iptables is %s on node %s, so bridged pod traffic skips iptables: kube-proxy's Service DNAT and NetworkPolicy rules do not apply between pods on the same bridge.", v, node)
		f.Fixes = []model.Fix{{Description: "Turn it on, on node " + node + ":", Commands: []string{"sysctl -w net.bridge.bridge-nf-call-iptables=1"}}, keep}
	}
	return f
}

func conntrack(node string, files map[string]string, ev []string) model.Finding {
	f := model.Finding{ID: IDConntrack, Evidence: ev}
	cnt, err1 := strconv.Atoi(files[agent.SysConntrackCnt])
	maxN, err2 := strconv.Atoi(files[agent.SysConntrackMax])
	if err1 != nil || err2 != nil || maxN <= 0 {
		f.Status, f.Title = model.StatusSkip, "conntrack usage not readable on node "+node+" (nf_conntrack not loaded?)"
		return f
	}
	ratio := float64(cnt) / float64(maxN)
	use := fmt.Sprintf("%d of %d entries (%.0f %%)", cnt, maxN, 100*ratio)
	f.Title = "conntrack table on node " + node + ": " + use
	switch {
	case ratio < ConntrackWarn:
		f.Status = model.StatusPass
		return f
	case ratio < ConntrackFail:
		f.Status = model.StatusWarn
		f.RootCause = fmt.Sprintf("The conntrack table on node %s holds %s, above %.0f %%: when it fills, the kernel drops new connections (\"nf_conntrack: table full, dropping packet\"), first seen as DNS and Service timeouts.", node, use, 100*ConntrackWarn)
	default:
		f.Status = model.StatusFail
		f.RootCause = fmt.Sprintf("The conntrack table on node %s is nearly full (%s): the kernel drops new connections once it reaches nf_conntrack_max, so DNS lookups and Service connections from that node time out at random.", node, use)
	}
	f.Fixes = conntrackFixes(node, maxN)
	return f
}

func conntrackFixes(node string, maxN int) []model.Fix {
	newMax := 2 * maxN
	return []model.Fix{
		{Description: "Raise the limit on node " + node + " (each entry costs about 300 bytes of kernel memory):",
			Commands: []string{fmt.Sprintf("sysctl -w net.netfilter.nf_conntrack_max=%d", newMax),
				fmt.Sprintf("echo 'net.netfilter.nf_conntrack_max = %d' >> %s", newMax, persistFile)}},
		{Description: "kube-proxy sets nf_conntrack_max at start from conntrack.maxPerCore (default 32768 per core) and min; raise it there so a restart does not undo the change:",
			Commands: []string{"kubectl -n kube-system edit configmap kube-proxy   # conntrack: {maxPerCore: 65536}",
				"kubectl -n kube-system rollout restart ds/kube-proxy"}},
		{Description: "Find who holds the entries (many short-lived DNS or UDP flows usually; NodeLocal DNS cache helps):",
			Commands: []string{"conntrack -S", "conntrack -L -o extended | awk '{print $3, $7}' | sort | uniq -c | sort -rn | head",
				"dmesg | grep -i 'nf_conntrack: table full'"}},
	}
}
