package podtoservice

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent"
)

// Rules is what a node's nat table says about kube-proxy and the Service.
type Rules struct {
	Services bool   // the KUBE-SERVICES chain exists
	SvcChain string // the KUBE-SVC-… chain of the Service's port, "" when missing
	NodePort bool   // KUBE-NODEPORTS has a rule for the Service's NodePort
	DNAT     []string
	Lines    []string // the rules found, for evidence
}

// InspectRules finds the Service's kube-proxy rules (iptables mode) in
// iptables-save output.
func InspectRules(iptables string, s Service) Rules {
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

// kubeProxy explains a Service path that fails on node v.Node while the
// endpoints answer directly.
func kubeProxy(in Input, v Verdict, ev []string) model.Finding {
	s, node := in.Service, v.Node
	f := model.Finding{Subject: subject(node), Status: model.StatusFail, Fixes: proxyFixes(in, node)}
	what := failedWhat(in, v)
	f.Title = fmt.Sprintf("Service %s fails on node %s (%s) although its endpoints answer", s.Ref(), node, what)
	facts, ok := in.Facts[node]
	if ok {
		ev = append(ev, facts.Errors...)
	}
	mode := in.Proxy.Mode
	if mode == "" {
		mode = "unknown"
	}
	ev = append(ev, fmt.Sprintf("kube-proxy mode: %s (%s)", mode, in.Proxy.Source))
	switch {
	case in.Proxy.Mode == "ipvs" || in.Proxy.Mode == "nftables":
		f.ID = IDKubeProxy
		f.RootCause = fmt.Sprintf("kube-proxy (%s mode) on node %s does not forward %s for Service %s, while the endpoints answer pod-to-pod.", in.Proxy.Mode, node, what, s.Ref())
	case !ok || facts.IPTables == "":
		f.ID = IDKubeProxy
		f.RootCause = fmt.Sprintf("kube-proxy on node %s does not forward %s for Service %s, while the endpoints answer pod-to-pod (the node's iptables could not be read to say more).", node, what, s.Ref())
	default:
		return fromRules(in, v, f, facts, ev)
	}
	f.Evidence = ev
	return f
}

// fromRules reads the node's nat table to say what is wrong with kube-proxy.
func fromRules(in Input, v Verdict, f model.Finding, facts agent.NodeFacts, ev []string) model.Finding {
	s, node := in.Service, v.Node
	r := InspectRules(facts.IPTables, s)
	grep := fmt.Sprintf("node agent on %s: iptables-save -t nat | grep -e ':KUBE-SERVICES' -e '%s'", node, s.Ref())
	switch {
	case !r.Services:
		f.ID = IDNoRules
		f.RootCause = fmt.Sprintf("Node %s has no KUBE-SERVICES chain in its nat table: kube-proxy is not running there or its rules were flushed, so pods on %s cannot use any ClusterIP and %s's NodePorts are dead, while pod-to-pod traffic works.", node, node, node)
		f.Evidence = append(ev, grep+" → no KUBE-SERVICES chain, no rule for the Service")
		return f
	case r.SvcChain == "" || (v.NodePortFailed && !r.NodePort && s.NodePort > 0):
		f.ID = IDStaleRules
		f.RootCause = fmt.Sprintf("kube-proxy on node %s has not programmed Service %s (%s), although it exists with ready endpoints: kube-proxy there is stuck or cannot reach the API server.", node, s.Ref(), missingRule(r))
		f.Evidence = append(ev, grep+" → KUBE-SERVICES present; "+missingRule(r))
		return f
	}
	f.Evidence = append(ev, grep+" → "+strings.Join(r.Lines, " | "))
	if len(r.DNAT) > 0 {
		f.Evidence = append(f.Evidence, fmt.Sprintf("node agent on %s: kube-proxy DNATs %s to %s", node, s.Ref(), strings.Join(r.DNAT, ", ")))
	}
	if v.ClusterIPFailed {
		return serviceDropped(in, v, f, facts)
	}
	f.ID = IDNodePortBlocked
	f.RootCause = fmt.Sprintf("NodePort %d on node %s fails from every node although kube-proxy there has its rule and the endpoints answer: a host firewall on %s drops 30000-32767/tcp, or kube-proxy's nodePortAddresses leaves out %s's address.", s.NodePort, node, node, node)
	f.Fixes = append([]model.Fix{{Description: "Open the NodePort range on node " + node + " (firewalld; then restart the CNI agent pod there, since a reload drops CNI chains):",
		Commands: []string{"firewall-cmd --permanent --add-port=30000-32767/tcp", "firewall-cmd --reload",
			"iptables -I INPUT -p tcp --dport 30000:32767 -j ACCEPT   # without firewalld"}},
		{Description: "Check kube-proxy's nodePortAddresses includes the node's address:", Commands: []string{"kubectl -n kube-system get configmap kube-proxy -o yaml | grep -A3 nodePortAddresses"}}}, f.Fixes...)
	return f
}

func missingRule(r Rules) string {
	if r.SvcChain == "" {
		return "no KUBE-SVC chain for the Service in KUBE-SERVICES"
	}
	return "no KUBE-NODEPORTS rule for its NodePort"
}

// serviceDropped explains a ClusterIP whose rules exist but whose traffic is
// lost after DNAT.
func serviceDropped(in Input, v Verdict, f model.Finding, facts agent.NodeFacts) model.Finding {
	s, node := in.Service, v.Node
	f.ID = IDServiceDropped
	bnf, ok := facts.Sysctl(agent.SysBridgeNF)
	f.Evidence = append(f.Evidence, fmt.Sprintf("node agent on %s: cat %s → %s", node, agent.SysBridgeNF, orMissing(bnf, ok)))
	if !ok || bnf == "0" {
		f.RootCause = fmt.Sprintf("net.bridge.bridge-nf-call-iptables is %s on node %s, so bridged pod traffic to ClusterIP %s skips kube-proxy's DNAT rules (which are present).", orMissing(bnf, ok), node, s.ClusterIP)
		f.Fixes = []model.Fix{{Description: "Load br_netfilter and let bridged traffic through iptables, on node " + node + ":",
			Commands: []string{"modprobe br_netfilter", "sysctl -w net.bridge.bridge-nf-call-iptables=1",
				"echo br_netfilter > /etc/modules-load.d/k8s.conf", "echo 'net.bridge.bridge-nf-call-iptables = 1' > /etc/sysctl.d/99-kubernetes.conf"}}}
		return f
	}
	f.RootCause = fmt.Sprintf("kube-proxy on node %s has the rules for %s (ClusterIP %s), but connections from pods on %s through it fail while the endpoints answer directly: a FORWARD drop, a full conntrack table or a stale conntrack entry loses the DNATed traffic.", node, s.Ref(), s.ClusterIP, node)
	f.Fixes = append([]model.Fix{{Description: "Look at the node's conntrack usage, FORWARD chain and stale entries for the ClusterIP:",
		Commands: []string{"netsleuth check --probe node-sysctl", "iptables -S FORWARD", "conntrack -L -d " + s.ClusterIP, "conntrack -D -d " + s.ClusterIP}}}, f.Fixes...)
	return f
}

func orMissing(v string, ok bool) string {
	if !ok {
		return "missing (br_netfilter not loaded)"
	}
	return v
}

func failedWhat(in Input, v Verdict) string {
	var parts []string
	if v.ClusterIPFailed {
		parts = append(parts, fmt.Sprintf("ClusterIP %s:%d from its pods", in.Service.ClusterIP, in.Service.Port))
	}
	if v.NodePortFailed {
		parts = append(parts, fmt.Sprintf("its NodePort %d from every node", in.Service.NodePort))
	}
	return strings.Join(parts, " and ")
}

// proxyFixes restarts kube-proxy on node: its pod when it runs as a
// DaemonSet, else the system service.
func proxyFixes(in Input, node string) []model.Fix {
	check := "iptables-save -t nat | grep -c -e KUBE-SERVICES -e " + in.Service.Ref()
	if pod, ok := in.Proxy.Pods[node]; ok {
		return []model.Fix{
			{Description: "Look at kube-proxy's log on node " + node + ", then restart it:",
				Commands: []string{"kubectl -n kube-system logs " + pod, "kubectl -n kube-system delete pod " + pod}},
			{Description: "Or restart kube-proxy on every node, then check the rules are back:",
				Commands: []string{"kubectl -n kube-system rollout restart ds/kube-proxy", check, "netsleuth check --probe pod-to-service"}},
		}
	}
	return []model.Fix{
		{Description: "kube-proxy does not run as a pod on node " + node + ": look at its log and restart it there (systemd unit or static process):",
			Commands: []string{"journalctl -u kube-proxy --since -1h", "systemctl restart kube-proxy", check}},
		{Description: "If it is a DaemonSet in your cluster, restart it instead:",
			Commands: []string{"kubectl -n kube-system rollout restart ds/kube-proxy", "netsleuth check --probe pod-to-service"}},
	}
}
