// Package nodeports is the node-ports probe (scenario G, seed 001): the
// port tables per node role, kept per distribution in assets/node-ports.yaml,
// are tried from another node's network namespace (announced node agents):
// an answer or a RST means the firewall lets the port through, a timeout or
// an ICMP reject means it is filtered, and the firewall-cmd commands that
// open it are given. Nodes running a CNI agent (Cilium, Calico, Flannel,
// Weave) are checked for its iptables chains, which a firewalld reload drops.
//
// Not a default probe: it starts a privileged agent on every node.
package nodeports

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/assets"
	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// ID is the probe's identifier for --probe.
const ID = "node-ports"

type probe struct{}

// New returns the node-ports probe.
func New() probes.Probe { return probe{} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID: ID, Title: "Node ports per role, and CNI chains after firewalld reloads", Scenario: "G",
		Description: "Connects from a privileged hostNetwork agent on a neighbouring node to every TCP port the node's roles " +
			"need (--port-profile: " + strings.Join(assets.MustNodePorts().ProfileNames(), ", ") + "), telling filtered " +
			"(timeout, ICMP reject) from open (answer or RST), with the firewall-cmd commands; and checks that nodes running a " +
			"CNI agent still have its iptables chains (firewalld reload known issue). Not default: agents on every node.",
		RBAC: model.MergePermissions(agent.RBAC, kube.RBACNodes, kube.RBACPods, rbacAPIServer),
		Inputs: []model.Input{{Flag: "port-profile", Description: "port profile from assets/node-ports.yaml (default kubeadm).",
			Example: assets.MustNodePorts().DefaultProfile, Check: CheckProfile}},
		Agents: []model.AgentUse{{Kind: model.AgentNode, Sample: true}},
	}
}

func (probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	data := assets.MustNodePorts()
	name := env.Options.PortProfile
	if name == "" {
		name = data.DefaultProfile
	}
	profile, ok := data.Profiles[name]
	if !ok {
		rec.Finding(model.Finding{ID: IDUnknownProfile, Status: model.StatusError, Title: "Unknown --port-profile " + name,
			RootCause: fmt.Sprintf("There is no port profile %q, so no port was tried.", name),
			Fixes: []model.Fix{{Description: "Use one of: " + strings.Join(data.ProfileNames(), ", "),
				Commands: []string{"netsleuth check --probe node-ports --port-profile " + data.DefaultProfile}}}})
		return nil
	}
	rec.Stage("listing nodes, API server endpoints and CNI agent pods")
	nodes, sample, err := discoverNodes(ctx, env, data)
	if err != nil {
		return err
	}
	agent.ReportLeftovers(ctx, env, rec, ID)
	probes.RecordCoverage(rec, ID, sample)
	if len(nodes) < 2 {
		title := "Only one Ready node: there is no other node to try its ports from"
		if sample.Ready > 1 {
			title = "--max-nodes=1 leaves no other node to try a node's ports from"
		}
		rec.Finding(model.Finding{ID: IDSingleNode, Status: model.StatusSkip, Title: title})
		return nil
	}
	cnis := cniAgents(ctx, env, data)
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	nodeAgents, failed, err := agent.StartNodes(ctx, env, rec, "try each node's required ports from its neighbour and read CNI chains", names)
	if err != nil {
		return err
	}
	in := Input{Profile: name, NotStarted: failed}
	rec.Stage(fmt.Sprintf("trying the %s port tables across %d node(s)", name, len(nodeAgents)))
	if in.Targets, err = tryAll(ctx, env, profile, nodes, cnis, nodeAgents); err != nil {
		return err
	}
	for _, f := range Analyze(in) {
		rec.Finding(f)
	}
	return nil
}

// discoverNodes lists Ready nodes with their roles: worker for all,
// control-plane or load-balancer by label, control-plane too when the node's
// address is an API server endpoint.
// rbacAPIServer is what the read of the kubernetes Service's EndpointSlices
// (the API server addresses) needs.
var rbacAPIServer = []model.Permission{{Group: "discovery.k8s.io", Resource: "endpointslices", Verbs: []string{"list"}}}

func discoverNodes(ctx context.Context, env *probes.Env, data assets.NodePorts) ([]NodeInfo, kube.NodeSample, error) {
	sample, err := env.AgentNodes(ctx)
	if err != nil {
		return nil, sample, err
	}
	sl, err := env.Kube.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	if err != nil {
		return nil, sample, fmt.Errorf("listing the API server's endpoints: %w", err)
	}
	var apiIPs []string
	for _, s := range sl.Items {
		for _, e := range s.Endpoints {
			apiIPs = append(apiIPs, e.Addresses...)
		}
	}
	return Roles(sample.Nodes, apiIPs, data.RoleLabels), sample, nil
}

// Roles gives every Ready node of all (the run's sample) its roles, sorted by name.
func Roles(all []corev1.Node, apiIPs []string, roleLabels map[string][]string) []NodeInfo {
	var out []NodeInfo
	for _, n := range all {
		if !kube.Ready(n) {
			continue
		}
		ni := NodeInfo{Name: n.Name}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && ni.IP == "" {
				ni.IP = a.Address
			}
		}
		for _, role := range []string{"control-plane", "load-balancer"} {
			has := slices.ContainsFunc(roleLabels[role], func(l string) bool { _, ok := n.Labels[l]; return ok })
			if has || (role == "control-plane" && slices.Contains(apiIPs, ni.IP)) {
				ni.Roles = append(ni.Roles, role)
			}
		}
		ni.Roles = append(ni.Roles, "worker")
		out = append(out, ni)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// cniAgents finds the running CNI agent pod on each node; an RBAC denial or
// an error leaves the chain check out.
func cniAgents(ctx context.Context, env *probes.Env, data assets.NodePorts) map[string]*CNIAgent {
	out := map[string]*CNIAgent{}
	for _, c := range data.CNIs {
		pods, err := kube.Pods(ctx, env.Kube, "", c.PodLabel)
		if err != nil {
			continue
		}
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" {
				out[p.Spec.NodeName] = &CNIAgent{CNI: c, Namespace: p.Namespace, Pod: p.Name}
			}
		}
	}
	return out
}

// tryAll has each node's agent try the ports of the next node (in name
// order, wrapping), and read its own iptables when a CNI agent runs on it.
func tryAll(ctx context.Context, env *probes.Env, profile assets.PortProfile, nodes []NodeInfo, cnis map[string]*CNIAgent, nodeAgents []probes.Agent) ([]Target, error) {
	byNode := map[string]probes.Agent{}
	for _, a := range nodeAgents {
		byNode[a.Node] = a
	}
	targets := make([]Target, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		targets[i] = Target{Node: n, CNI: cnis[n.Name]}
		src, ok := byNode[nodes[(i+1)%len(nodes)].Name]
		if !ok {
			continue
		}
		tcp, udp := PortsFor(profile, n, cnis[n.Name])
		targets[i].UDP = udp
		wg.Go(func() {
			var req ops.Request
			for _, p := range tcp {
				req.Ops = append(req.Ops, ops.Op{Kind: ops.TCP, Target: n.IP, Port: p.Port, TimeoutMs: 2000})
			}
			resp, err := env.Agents.Exec(ctx, src, req)
			if err != nil {
				errs[i] = err
				return
			}
			for j, p := range tcp {
				targets[i].Attempts = append(targets[i].Attempts, Attempt{Port: p, From: src, Result: resp.Results[j]})
			}
		})
		if own, ok := byNode[n.Name]; ok && targets[i].CNI != nil {
			wg.Go(func() {
				resp, err := env.Agents.Exec(ctx, own, ops.Request{Ops: []ops.Op{{Kind: ops.IPTablesSave, TimeoutMs: 5000}}})
				if err != nil {
					targets[i].IPTErr = err.Error()
					return
				}
				targets[i].IPTables, targets[i].IPTErr = resp.Results[0].Output, resp.Results[0].Error
			})
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return targets, nil
}
