package agent

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// Sysctl files node facts read.
const (
	SysIPForward    = "/proc/sys/net/ipv4/ip_forward"
	SysBridgeNF     = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	SysConntrackCnt = "/proc/sys/net/netfilter/nf_conntrack_count"
	SysConntrackMax = "/proc/sys/net/netfilter/nf_conntrack_max"
	SysRPFilterAll  = "/proc/sys/net/ipv4/conf/all/rp_filter"
)

// NodeFacts is what a node agent saw on its node.
type NodeFacts struct {
	Node     string
	Sysctls  map[string]string // path → value; absent when unreadable
	Routes   []ops.Route
	IPTables string // iptables-save output, "" when unreadable
	// IPSets is `ipset save` output, "" when the host has no ipset tool
	// (rules matching a set are then judged as unknown).
	IPSets string
	// Errors are what could not be read, for evidence.
	Errors []string
}

// FactsRequest is the request a node agent runs to gather NodeFacts.
func FactsRequest() ops.Request {
	return ops.Request{Ops: []ops.Op{
		{Kind: ops.ReadFiles, Paths: []string{SysIPForward, SysBridgeNF, SysConntrackCnt, SysConntrackMax, SysRPFilterAll}},
		{Kind: ops.Routes},
		{Kind: ops.IPTablesSave, TimeoutMs: 5000},
		{Kind: ops.IPSetSave, TimeoutMs: 5000},
	}}
}

// FactsFrom turns the answer to FactsRequest into NodeFacts.
func FactsFrom(node string, resp ops.Response) NodeFacts {
	f := NodeFacts{Node: node, Sysctls: map[string]string{}}
	if len(resp.Results) != len(FactsRequest().Ops) {
		f.Errors = append(f.Errors, "the node agent gave no answer")
		return f
	}
	for i, r := range resp.Results {
		if r.Error != "" && !strings.HasPrefix(r.Error, ops.NoIPSetTool) {
			f.Errors = append(f.Errors, fmt.Sprintf("%s: %s", r.Op.Kind, r.Error))
		}
		switch i {
		case 0:
			f.Sysctls = r.Files
		case 1:
			f.Routes = r.Routes
		case 2:
			f.IPTables = r.Output
		case 3:
			f.IPSets = r.Output
		}
	}
	return f
}

// GatherFacts runs FactsRequest in every node agent concurrently.
func GatherFacts(ctx context.Context, env *probes.Env, nodeAgents []probes.Agent) map[string]NodeFacts {
	out, _ := probes.FanOut(ctx, len(nodeAgents), 0, func(ctx context.Context, i int) (NodeFacts, error) {
		a := nodeAgents[i]
		resp, err := env.Agents.Exec(ctx, a, FactsRequest())
		if err != nil {
			return NodeFacts{Node: a.Node, Errors: []string{err.Error()}}, nil
		}
		return FactsFrom(a.Node, resp), nil
	})
	m := map[string]NodeFacts{}
	for i, f := range out {
		if f.Node == "" {
			f.Node = nodeAgents[i].Node
		}
		m[f.Node] = f
	}
	return m
}

// Sysctl returns the value of a sysctl file and whether it was read.
func (f NodeFacts) Sysctl(path string) (string, bool) {
	v, ok := f.Sysctls[path]
	return v, ok
}

// RouteTo is the route the node uses for dst.
func (f NodeFacts) RouteTo(dst netip.Addr) (ops.Route, bool) { return ops.Lookup(f.Routes, dst) }

// Rule is one iptables-save rule line in a table.
type Rule struct {
	Table, Chain string
	Line         string // the whole "-A CHAIN ..." line
	Args         map[string]string
}

// ParseIPTables splits iptables-save output into chain policies
// ("table/CHAIN" → policy) and rules.
func ParseIPTables(text string) (policies map[string]string, rules []Rule) {
	policies = map[string]string{}
	table := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":"):
			f := strings.Fields(l[1:])
			if len(f) >= 2 {
				policies[table+"/"+f[0]] = f[1]
			}
		case strings.HasPrefix(l, "-A "):
			f := strings.Fields(l)
			r := Rule{Table: table, Chain: f[1], Line: l, Args: map[string]string{}}
			for i := 2; i < len(f); i++ {
				if strings.HasPrefix(f[i], "-") && i+1 < len(f) && !strings.HasPrefix(f[i+1], "-") {
					if f[i] == "!" {
						continue
					}
					r.Args[f[i]] = f[i+1]
				}
			}
			if strings.Contains(l, " ! -s ") {
				r.Args["!-s"] = r.Args["-s"]
				delete(r.Args, "-s")
			}
			if strings.Contains(l, " ! -d ") {
				r.Args["!-d"] = r.Args["-d"]
				delete(r.Args, "-d")
			}
			rules = append(rules, r)
		}
	}
	return policies, rules
}
