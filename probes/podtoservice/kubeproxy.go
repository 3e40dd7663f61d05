package podtoservice

import (
	"fmt"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/fix"
	"github.com/netsleuth/netsleuth/probes/nodenet"
)

// ref is the Service as the shared kube-proxy diagnosis names it.
func (s Service) ref() nodenet.ServiceRef {
	return nodenet.ServiceRef{Namespace: s.Namespace, Name: s.Name, PortName: s.PortName, ClusterIP: s.ClusterIP, Port: s.Port, NodePort: s.NodePort}
}

// kubeProxy explains a Service path that fails on node v.Node while the
// endpoints answer directly.
func kubeProxy(in Input, v Verdict, ev []string) []model.Finding {
	s, node := in.Service, v.Node
	f := model.Finding{Subject: subject(node), Status: model.StatusFail, Fixes: nodenet.KubeProxyFixes(node, s.ref(), in.Proxy)}
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
	return []model.Finding{f}
}

// fromRules reads the node's nat table to say what is wrong with kube-proxy:
// its rules gone or the Service not programmed (the shared node diagnosis,
// cited as the cause), a NodePort rule missing, or rules present and the
// traffic lost after DNAT.
func fromRules(in Input, v Verdict, f model.Finding, facts agent.NodeFacts, ev []string) []model.Finding {
	s, node := in.Service, v.Node
	f.ID, f.Evidence = IDKubeProxy, ev
	if cause, broken := nodenet.KubeProxy(nodenet.Node{Name: node, Facts: facts}, s.ref(), in.Proxy); broken {
		return []model.Finding{cause, f.Symptom(cause)}
	}
	r := nodenet.KubeProxyRules(facts.IPTables, s.ref())
	grep := fmt.Sprintf("node agent on %s: iptables-save -t nat | grep -e ':KUBE-SERVICES' -e '%s'", node, s.Ref())
	if v.NodePortFailed && !r.NodePort && s.NodePort > 0 {
		f.ID = IDStaleRules
		f.RootCause = fmt.Sprintf("kube-proxy on node %s has not programmed NodePort %d of Service %s (no KUBE-NODEPORTS rule), although the Service exists with ready endpoints: kube-proxy there is stuck or cannot reach the API server.", node, s.NodePort, s.Ref())
		f.Evidence = append(ev, grep+" → KUBE-SERVICES present; no KUBE-NODEPORTS rule for its NodePort")
		return []model.Finding{f}
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
	f.Fixes = append([]model.Fix{{Description: "Open the NodePort range on node " + node + " (firewalld; then restart the CNI agent pod there, since a reload drops CNI chains):", Node: node,
		Commands: []string{"firewall-cmd --permanent --add-port=30000-32767/tcp", "firewall-cmd --reload"}},
		{Description: "Without firewalld, on node " + node + ":", Node: node,
			Commands: []string{fix.Rule{Chain: "INPUT", Spec: "-p tcp --dport 30000:32767 -j ACCEPT", Insert: true}.Ensure()}},
		{Description: "Check kube-proxy's nodePortAddresses includes the node's address:", Commands: []string{"kubectl -n kube-system get configmap kube-proxy -o yaml | grep -A3 nodePortAddresses"}}}, f.Fixes...)
	return []model.Finding{f}
}

// serviceDropped explains a ClusterIP whose rules exist but whose traffic is
// lost after DNAT: bridged traffic skipping iptables (the shared node
// diagnosis of bridge-nf-call-iptables, cited as the cause), else a drop or
// conntrack trouble after the DNAT.
func serviceDropped(in Input, v Verdict, f model.Finding, facts agent.NodeFacts) []model.Finding {
	s, node := in.Service, v.Node
	f.ID = IDServiceDropped
	if cause := nodenet.BridgeNF(nodenet.Node{Name: node, Facts: facts}); cause.Status != model.StatusPass {
		return []model.Finding{cause, f.Symptom(cause)}
	}
	f.RootCause = fmt.Sprintf("kube-proxy on node %s has the rules for %s (ClusterIP %s), but connections from pods on %s through it fail while the endpoints answer directly: a FORWARD drop, a full conntrack table or a stale conntrack entry loses the DNATed traffic.", node, s.Ref(), s.ClusterIP, node)
	f.Fixes = append([]model.Fix{{Description: "Look at the node's conntrack usage, FORWARD chain and stale entries for the ClusterIP:", Node: node,
		Commands: []string{"iptables -S FORWARD", "conntrack -S", "conntrack -L -d " + s.ClusterIP, "conntrack -D -d " + s.ClusterIP}},
		{Description: "And the node's kernel settings:", Commands: []string{"netsleuth check --probe node-sysctl"}}}, f.Fixes...)
	return []model.Finding{f}
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
