package nodenet

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// Finding IDs of the node's kube-proxy rules for a Service.
const (
	IDKubeProxyNoRules = "node.kube-proxy-no-rules"
	IDKubeProxyStale   = "node.kube-proxy-stale"
)

// ServiceRef is the Service whose kube-proxy rules are judged.
type ServiceRef struct {
	Namespace, Name string
	PortName        string // for kube-proxy's rule comment "ns/name:port"
	ClusterIP       string
	Port, NodePort  int
}

// Ref is "namespace/name".
func (s ServiceRef) Ref() string { return s.Namespace + "/" + s.Name }

// Rules is what a node's nat table says about kube-proxy and the Service.
type Rules struct {
	Services bool   // the KUBE-SERVICES chain exists
	SvcChain string // the KUBE-SVC-… chain of the Service's port, "" when missing
	NodePort bool   // KUBE-NODEPORTS has a rule for the Service's NodePort
	DNAT     []string
	Lines    []string // the rules found, for evidence
}

// KubeProxyRules finds the Service's kube-proxy rules (iptables mode) in
// iptables-save output.
func KubeProxyRules(iptables string, s ServiceRef) Rules {
	pol, rules := agent.ParseIPTables(iptables)
	_, r := pol["nat/KUBE-SERVICES"]
	out := Rules{Services: r}
	key := s.Ref()
	if s.PortName != "" {
		key += ":" + s.PortName
	}
	for _, rule := range rules {
		if rule.Table != "nat" {
			continue
		}
		switch {
		case rule.Chain == "KUBE-SERVICES" && strings.Contains(rule.Line, `"`+key+` cluster IP"`):
			out.SvcChain = rule.Args["-j"]
			out.Lines = append(out.Lines, rule.Line)
		case rule.Chain == "KUBE-NODEPORTS" && strings.Contains(rule.Line, `"`+key+`"`) &&
			s.NodePort > 0 && rule.Args["--dport"] == strconv.Itoa(s.NodePort):
			out.NodePort = true
			out.Lines = append(out.Lines, rule.Line)
		case strings.HasPrefix(rule.Chain, "KUBE-SEP-") && rule.Args["-j"] == "DNAT" && strings.Contains(rule.Line, `"`+key+`"`):
			out.DNAT = append(out.DNAT, rule.Args["--to-destination"])
		}
	}
	return out
}

// KubeProxy judges the node's kube-proxy rules (iptables mode) for Service
// s: no KUBE-SERVICES chain at all (kube-proxy is not running or its rules
// were flushed), or none for s (it has not programmed it). p says how
// kube-proxy runs, for the restart fix.
func KubeProxy(n Node, s ServiceRef, p kube.KubeProxy) (model.Finding, bool) {
	if n.Facts.IPTables == "" || (p.Mode != "" && p.Mode != "iptables") {
		return model.Finding{}, false
	}
	r := KubeProxyRules(n.Facts.IPTables, s)
	grep := fmt.Sprintf("node agent on %s: iptables-save -t nat | grep -e ':KUBE-SERVICES' -e '%s'", n.Name, s.Ref())
	var f model.Finding
	switch {
	case !r.Services:
		f = n.finding(IDKubeProxyNoRules, model.StatusFail, fmt.Sprintf("kube-proxy's rules are missing on node %s", n.Name),
			grep+" → no KUBE-SERVICES chain, no rule for the Service")
		f.RootCause = fmt.Sprintf("Node %s has no KUBE-SERVICES chain in its nat table: kube-proxy is not running there or its rules were flushed, so pods on %s cannot use any ClusterIP and %s's NodePorts are dead, while pod-to-pod traffic works.", n.Name, n.Name, n.Name)
	case r.SvcChain == "":
		f = n.finding(IDKubeProxyStale, model.StatusFail, fmt.Sprintf("kube-proxy on node %s has not programmed Service %s", n.Name, s.Ref()),
			grep+" → KUBE-SERVICES present; no KUBE-SVC chain for the Service")
		f.RootCause = fmt.Sprintf("kube-proxy on node %s has not programmed Service %s (no KUBE-SVC chain for it), although the Service exists: kube-proxy there is stuck or cannot reach the API server.", n.Name, s.Ref())
		f = f.WithKey(s.Ref())
	default:
		return model.Finding{}, false
	}
	f.Fixes = KubeProxyFixes(n.Name, s, p)
	f.References = []string{"https://kubernetes.io/docs/reference/networking/virtual-ips/"}
	return f, true
}

// KubeProxyFixes restart kube-proxy on node: its pod when it runs as a
// DaemonSet, else the node's service.
func KubeProxyFixes(node string, s ServiceRef, p kube.KubeProxy) []model.Fix {
	check := model.Fix{Description: "Then check on node " + node + " that kube-proxy's rules are back (a count above 0), and run the probe again:", Node: node,
		Commands: []string{"iptables-save -t nat | grep -c -e KUBE-SERVICES -e " + s.Ref()}}
	again := model.Fix{Description: "Run the probe again:", Commands: []string{"netsleuth check --probe pod-to-service"}}
	if pod, ok := p.Pods[node]; ok {
		return []model.Fix{
			{Description: "Look at kube-proxy's log on node " + node + ", then restart it:",
				Commands: []string{"kubectl -n kube-system logs " + pod, "kubectl -n kube-system delete pod " + pod}},
			check, again,
			{Description: "Or restart kube-proxy on every node:", Commands: []string{"kubectl -n kube-system rollout restart ds/kube-proxy"}},
		}
	}
	return []model.Fix{
		{Description: "kube-proxy does not run as a pod on node " + node + ": look at its log and restart it there (systemd unit or static process):", Node: node,
			Commands: []string{"journalctl -u kube-proxy --since -1h", "systemctl restart kube-proxy"}},
		check, again,
		{Description: "If it is a DaemonSet in your cluster, restart it instead:",
			Commands: []string{"kubectl -n kube-system rollout restart ds/kube-proxy"}},
	}
}
