package podtoservice

import (
	"fmt"
	"slices"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/policy"
	"github.com/netsleuth/netsleuth/probes/servicediag"
)

// Finding IDs of this probe; they are a stable contract for scripts.
const (
	IDOK              = ID + ".ok"
	IDKubeProxy       = ID + ".kube-proxy"
	IDStaleRules      = ID + ".kube-proxy-stale"
	IDNodePortBlocked = ID + ".nodeport-blocked"
	IDServiceDropped  = ID + ".service-dropped"
	IDPodNetwork      = ID + ".pod-network"
	IDRefused         = ID + ".endpoints-refuse"
	IDNoEndpoints     = ID + ".no-endpoints"
	IDBadService      = ID + ".service-not-usable"
	IDAgentNotStarted = ID + ".agent-not-started"
	// IDPolicyDenied: asked --from a workload, NetworkPolicy denies its
	// traffic to every endpoint of the Service, and none arrives.
	IDPolicyDenied = ID + ".policy-denied"
)

// Backend is one ready endpoint of the Service.
type Backend = servicediag.Endpoint

// Service is the Service under test.
type Service struct {
	Namespace, Name string
	PortName        string // for the kube-proxy rule comment "ns/name:port"
	ClusterIP       string
	Port            int
	NodePort        int // 0: not a NodePort Service
	Backends        []Backend
	// Temporary is true for the Service the probe created in front of its
	// agents; they answer HTTP with their identity, naming the backend.
	Temporary bool
}

// Ref is "namespace/name".
func (s Service) Ref() string { return s.Namespace + "/" + s.Name }

// Node is one node whose NodePort is tried.
type Node struct {
	Name, IP string
}

// Source is what the pod agent on one node saw.
type Source struct {
	Agent     probes.Agent
	ClusterIP ops.Result
	Direct    []ops.Result          // one per Backend, same order
	NodePorts map[string]ops.Result // node name → result to its NodePort
}

// Proxy is what is known about kube-proxy.
type Proxy = kube.KubeProxy

// Input is everything Analyze reasons about.
type Input struct {
	Service    Service
	Nodes      []Node
	Sources    []Source
	Facts      map[string]agent.NodeFacts // nodes that failed, read by node agents
	Proxy      Proxy
	NotStarted []probes.Agent
	// From is the workload asked from (--from), "" when the run's own pod
	// agents are the sources; its sender is then the one source, and
	// Policy the policy engine's answer for its traffic to each backend
	// (in the order of Service.Backends; nil entries when unknown).
	From   string
	Policy []*policy.Answer
}

// expect is what a result should be when the policies are right: reached
// when they allow it (or say nothing), not arrived when they deny it.
// Results to the ClusterIP and NodePorts go to some endpoint: they are
// denied only when every endpoint is.
func (in Input) expect(backend int) (allowed bool) {
	if len(in.Policy) == 0 {
		return true
	}
	if backend >= 0 {
		return in.Policy[backend] == nil || in.Policy[backend].Allowed()
	}
	for i := range in.Service.Backends {
		if in.expect(i) {
			return true
		}
	}
	return false
}

// settled reports whether a source's results are what the policies
// predict, so measuring again would not change them.
func (in Input) settled(rs []ops.Result) bool {
	nb := len(in.Service.Backends)
	for i, r := range rs {
		b := -1
		if i >= 1 && i <= nb {
			b = i - 1
		}
		if allowed := in.expect(b); (allowed && !Reached(r)) || (!allowed && r.Arrived()) {
			return false
		}
	}
	return true
}

// Reached reports whether the target answered with a connection.
func Reached(r ops.Result) bool { return r.Outcome == ops.OK }

// Verdict is what failed for one node.
type Verdict struct {
	Node            string
	Tested          bool // a source on the node, or its NodePort tried from one
	ClusterIPFailed bool // from the pod on Node
	DirectOK        bool // the pod on Node reaches at least one backend directly
	NodePortFailed  bool // Node's NodePort fails from every source that reaches a backend directly
}

// Failing reports whether the Service path fails for the node.
func (v Verdict) Failing() bool { return v.ClusterIPFailed || v.NodePortFailed }

// Judge computes the verdict of every node, in the order of in.Nodes.
func Judge(in Input) []Verdict {
	var out []Verdict
	for _, n := range in.Nodes {
		v := Verdict{Node: n.Name}
		if src, ok := sourceOn(in, n.Name); ok {
			v.Tested = true
			v.ClusterIPFailed = !Reached(src.ClusterIP)
			v.DirectOK = slices.ContainsFunc(src.Direct, Reached)
		}
		if in.Service.NodePort > 0 {
			tried, failed := 0, 0
			for _, s := range in.Sources {
				r, ok := s.NodePorts[n.Name]
				if !ok || !slices.ContainsFunc(s.Direct, Reached) {
					continue
				}
				tried++
				if !Reached(r) {
					failed++
				}
			}
			v.NodePortFailed = tried > 0 && failed == tried
			v.Tested = v.Tested || tried > 0
		}
		out = append(out, v)
	}
	return out
}

// FailingNodes are the nodes whose kube-proxy rules a node agent should read.
func FailingNodes(in Input) []string {
	var out []string
	for _, v := range Judge(in) {
		if _, blocked := policyBlocks(in, v); v.Failing() && !blocked {
			out = append(out, v.Node)
		}
	}
	return out
}

func sourceOn(in Input, node string) (Source, bool) {
	for _, s := range in.Sources {
		if s.Agent.Node == node {
			return s, true
		}
	}
	return Source{}, false
}

// Analyze turns the results into one finding per node.
func Analyze(in Input) []model.Finding {
	var out []model.Finding
	for _, a := range in.NotStarted {
		out = append(out, agent.NotStarted(ID, a)...)
	}
	switch {
	case in.Service.Name == "":
		return out // no agent started: nothing was sent
	case len(in.Service.Backends) == 0:
		return append(out, noEndpoints(in.Service))
	}
	for _, v := range Judge(in) {
		if v.Tested {
			out = append(out, diagnose(in, v)...)
		}
	}
	return out
}

func subject(node string) *model.Subject { return &model.Subject{Kind: "Node", Name: node} }

func diagnose(in Input, v Verdict) []model.Finding {
	ev := evidence(in, v.Node)
	s := in.Service
	if a, blocked := policyBlocks(in, v); blocked {
		return []model.Finding{policyDenied(in, a, ev)}
	}
	contradiction := notEnforced(in, v)
	switch {
	case !v.Failing():
		what := "ClusterIP " + s.ClusterIP + ":" + fmt.Sprint(s.Port)
		if s.NodePort > 0 {
			what += " and NodePort " + fmt.Sprint(s.NodePort)
		}
		where := "on node " + v.Node
		if _, ok := sourceOn(in, v.Node); ok && in.From != "" {
			where = "from " + in.From + " on node " + v.Node
		}
		return append(contradiction, model.Finding{ID: IDOK, Status: model.StatusPass, Subject: subject(v.Node), Evidence: ev,
			Title: fmt.Sprintf("Service %s works %s (%s)", s.Ref(), where, what)})
	case v.ClusterIPFailed && !v.DirectOK && len(refusing(in, v.Node)) > 0:
		return append(contradiction, endpointsRefuse(in, v, ev))
	case v.ClusterIPFailed && !v.DirectOK:
		return []model.Finding{podNetwork(in, v, ev)}
	}
	return append(contradiction, kubeProxy(in, v, ev)...)
}

// evidence lists, for node, what its pod sent and what came back, and what
// every source got from node's NodePort.
func evidence(in Input, node string) []string {
	var ev []string
	if src, ok := sourceOn(in, node); ok {
		ev = append(ev, line(src.Agent, src.ClusterIP, "via the ClusterIP"))
		for i, r := range src.Direct {
			ev = append(ev, line(src.Agent, r, "direct to endpoint "+backendRef(in.Service.Backends[i])))
		}
	}
	for _, s := range in.Sources {
		if r, ok := s.NodePorts[node]; ok {
			ev = append(ev, line(s.Agent, r, "via node "+node+"'s NodePort"))
		}
	}
	return ev
}

func backendRef(b Backend) string {
	if b.Node == "" {
		return fmt.Sprintf("%s:%d", b.IP, b.Port)
	}
	return fmt.Sprintf("%s:%d on %s", b.IP, b.Port, b.Node)
}

// line is one evidence line; an HTTP answer names the backend that served it
// (the DNAT target kube-proxy chose).
func line(a probes.Agent, r ops.Result, via string) string {
	s := fmt.Sprintf("%s (%s)", agent.Evidence(a, r), via)
	if r.Outcome == ops.OK && strings.HasPrefix(r.Body, agent.Banner) {
		s += ": answered by " + strings.TrimSpace(strings.TrimPrefix(r.Body, agent.Banner))
	}
	return s
}

func noEndpoints(s Service) model.Finding {
	return model.Finding{ID: IDNoEndpoints, Status: model.StatusFail, Subject: &model.Subject{Kind: "Service", Namespace: s.Namespace, Name: s.Name},
		Title:     fmt.Sprintf("Service %s has no ready endpoints: there is nothing to send traffic to", s.Ref()),
		RootCause: fmt.Sprintf("No EndpointSlice of Service %s lists a ready endpoint, so kube-proxy rejects every connection to it on every node; this is not a kube-proxy fault.", s.Ref()),
		Evidence:  []string{fmt.Sprintf("kubectl -n %s get endpointslices -l kubernetes.io/service-name=%s → no ready endpoint", s.Namespace, s.Name)},
		Fixes: []model.Fix{{Description: "Find out why the Service has no ready endpoints (selector, readiness, targetPort):",
			Commands: []string{fmt.Sprintf("netsleuth check --probe services -n %s", s.Namespace),
				fmt.Sprintf("kubectl -n %s get endpointslices -l kubernetes.io/service-name=%s -o wide", s.Namespace, s.Name)}}}}
}

func podNetwork(in Input, v Verdict, ev []string) model.Finding {
	s := in.Service
	return model.Finding{ID: IDPodNetwork, Status: model.StatusFail, Subject: subject(v.Node), Evidence: ev,
		Title: fmt.Sprintf("%s reach neither Service %s nor its endpoints directly", in.pods(v.Node), s.Ref()),
		RootCause: fmt.Sprintf("%s cannot reach any endpoint of %s even by pod IP, so the Service fails because pod-to-pod traffic from %s fails, not because of kube-proxy.",
			in.pod(v.Node), s.Ref(), v.Node),
		Fixes: []model.Fix{{Description: "Diagnose the pod network from this node (same-node and cross-node pairs, forwarding, routes, overlay ports):",
			Commands: []string{"netsleuth check --probe pod-to-pod"}}}}
}

// refusing are the endpoints that refused or reset the connection from the
// node's pod: the packets arrived there, nothing listens on the port.
func refusing(in Input, node string) []Backend {
	src, ok := sourceOn(in, node)
	if !ok {
		return nil
	}
	var out []Backend
	for i, r := range src.Direct {
		if r.NotListening() {
			out = append(out, in.Service.Backends[i])
		}
	}
	return out
}

// endpointsRefuse is a Service whose endpoints answer with a reset on their
// port: a refused connection proves the path works, so this is not the pod
// network's fault but the Service's targetPort or the application's.
func endpointsRefuse(in Input, v Verdict, ev []string) model.Finding {
	s := in.Service
	var eps []string
	for _, b := range refusing(in, v.Node) {
		eps = append(eps, backendRef(b))
	}
	who := "Every endpoint of Service " + s.Ref() + " (%s) answers"
	others := ""
	if len(eps) < len(s.Backends) {
		who = "Endpoints of Service " + s.Ref() + " (%s) answer"
		others = " (the other endpoints do not answer at all: see the evidence, and pod-to-pod for the path to them)"
	}
	return model.Finding{ID: IDRefused, Status: model.StatusFail, Subject: &model.Subject{Kind: "Service", Namespace: s.Namespace, Name: s.Name}, Evidence: ev,
		Title: fmt.Sprintf("Service %s: its endpoints refuse the connection (nothing listens on the target port)", s.Ref()),
		RootCause: fmt.Sprintf(who+" a connection from node %s with a reset%s: the packets arrive, so the pod network works, but nothing listens on that port in the pods: the Service's targetPort does not match the port the application listens on, or the application is not listening.",
			strings.Join(eps, ", "), v.Node, others),
		Fixes: []model.Fix{{Description: "Compare the Service's targetPort with the ports the pods declare and listen on, then point targetPort at the right one:",
			Commands: []string{fmt.Sprintf("kubectl -n %s get service %s -o jsonpath='{.spec.ports}'", s.Namespace, s.Name),
				fmt.Sprintf("kubectl -n %s get endpointslices -l kubernetes.io/service-name=%s -o wide", s.Namespace, s.Name),
				fmt.Sprintf("kubectl -n %s patch service %s --type json -p '[{\"op\":\"replace\",\"path\":\"/spec/ports/0/targetPort\",\"value\":<port>}]'", s.Namespace, s.Name)}}},
		References: []string{"https://kubernetes.io/docs/concepts/services-networking/service/#defining-a-service"}}
}
