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
)

// Backend is one ready endpoint of the Service.
type Backend struct {
	IP   string
	Port int
	Node string // "" when the EndpointSlice does not say
}

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
	// Captures are the evidence of the captures of failing Service paths'
	// retries, by node.
	Captures map[string][]string
}

// Reached reports whether the target answered with a connection.
func Reached(r ops.Result) bool { return r.Outcome == ops.OK }

// Verdict is what failed for one node.
type Verdict struct {
	Node            string
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
		}
		out = append(out, v)
	}
	return out
}

// FailingNodes are the nodes whose kube-proxy rules a node agent should read.
func FailingNodes(in Input) []string {
	var out []string
	for _, v := range Judge(in) {
		if v.Failing() {
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
		out = append(out, diagnose(in, v)...)
	}
	return out
}

func subject(node string) *model.Subject { return &model.Subject{Kind: "Node", Name: node} }

func diagnose(in Input, v Verdict) []model.Finding {
	ev := append(evidence(in, v.Node), in.Captures[v.Node]...)
	s := in.Service
	switch {
	case !v.Failing():
		what := "ClusterIP " + s.ClusterIP + ":" + fmt.Sprint(s.Port)
		if s.NodePort > 0 {
			what += " and NodePort " + fmt.Sprint(s.NodePort)
		}
		return []model.Finding{{ID: IDOK, Status: model.StatusPass, Subject: subject(v.Node), Evidence: ev,
			Title: fmt.Sprintf("Service %s works on node %s (%s)", s.Ref(), v.Node, what)}}
	case v.ClusterIPFailed && !v.DirectOK && refusedEverywhere(in, v.Node):
		return []model.Finding{endpointsRefuse(in, v, ev)}
	case v.ClusterIPFailed && !v.DirectOK:
		return []model.Finding{podNetwork(in, v, ev)}
	}
	return kubeProxy(in, v, ev)
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
		Title: fmt.Sprintf("Pods on %s reach neither Service %s nor its endpoints directly", v.Node, s.Ref()),
		RootCause: fmt.Sprintf("The pod on node %s cannot reach any endpoint of %s even by pod IP, so the Service fails because pod-to-pod traffic from %s fails, not because of kube-proxy.",
			v.Node, s.Ref(), v.Node),
		Fixes: []model.Fix{{Description: "Diagnose the pod network from this node (same-node and cross-node pairs, forwarding, routes, overlay ports):",
			Commands: []string{"netsleuth check --probe pod-to-pod"}}}}
}

// refusedEverywhere reports whether every endpoint refused the connection
// from the node's pod: the packets arrived, nothing listens on the port.
func refusedEverywhere(in Input, node string) bool {
	src, ok := sourceOn(in, node)
	if !ok || len(src.Direct) == 0 {
		return false
	}
	for _, r := range src.Direct {
		if r.Outcome != ops.Refused {
			return false
		}
	}
	return true
}

// endpointsRefuse is a Service whose endpoints answer with a reset on their
// port: a refused connection proves the path works, so this is not the pod
// network's fault but the Service's targetPort or the application's.
func endpointsRefuse(in Input, v Verdict, ev []string) model.Finding {
	s := in.Service
	var eps []string
	for _, b := range s.Backends {
		eps = append(eps, backendRef(b))
	}
	return model.Finding{ID: IDRefused, Status: model.StatusFail, Subject: &model.Subject{Kind: "Service", Namespace: s.Namespace, Name: s.Name}, Evidence: ev,
		Title: fmt.Sprintf("Service %s: its endpoints refuse the connection (nothing listens on the target port)", s.Ref()),
		RootCause: fmt.Sprintf("Every endpoint of Service %s (%s) answers a connection from node %s with a reset: the packets arrive, so the pod network works, but nothing listens on that port in the pods: the Service's targetPort does not match the port the application listens on, or the application is not listening.",
			s.Ref(), strings.Join(eps, ", "), v.Node),
		Fixes: []model.Fix{{Description: "Compare the Service's targetPort with the ports the pods declare and listen on, then point targetPort at the right one:",
			Commands: []string{fmt.Sprintf("kubectl -n %s get service %s -o jsonpath='{.spec.ports}'", s.Namespace, s.Name),
				fmt.Sprintf("kubectl -n %s get endpointslices -l kubernetes.io/service-name=%s -o wide", s.Namespace, s.Name),
				fmt.Sprintf("kubectl -n %s patch service %s --type json -p '[{\"op\":\"replace\",\"path\":\"/spec/ports/0/targetPort\",\"value\":<port>}]'", s.Namespace, s.Name)}}},
		References: []string{"https://kubernetes.io/docs/concepts/services-networking/service/#defining-a-service"}}
}
