package trace

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/nodenet"
	"github.com/netsleuth/netsleuth/probes/servicediag"
)

// The hops of a trace, in the order a connection meets them; each is a
// finding with this ID.
const (
	IDDNS         = "trace.dns"
	IDService     = "trace.service"
	IDPolicy      = "trace.policy"
	IDSourceNode  = "trace.source-node"
	IDDestination = "trace.destination"
	IDConnection  = "trace.connection"
)

// Hops lists the hop IDs in order.
var Hops = []string{IDDNS, IDService, IDPolicy, IDSourceNode, IDDestination, IDConnection}

// Backend is one ready endpoint of the destination Service.
type Backend = servicediag.Endpoint

// Input is everything the hops are judged from.
type Input struct {
	From, To string
	SrcIP    netip.Addr
	SrcNode  string
	// Dest is the destination's address after resolution (the Service's
	// ClusterIP, a pod's IP or an off-cluster address); DestKind says which.
	Dest      netip.Addr
	DestKind  string // ToPod, ToService or ToAddress
	DestNode  string // the node of a destination pod
	DestNet   string
	Port      int
	Proto     string
	SenderRef string // who sent the live traffic, for evidence
	Notes     []string

	// Name is the DNS name asked about, "" when TO was not one; Resolved
	// the address it resolved to, DNSEvidence what the resolution showed,
	// DNSFailed why it failed and DNSCauses the shared findings that explain it.
	Name        string
	Resolved    string
	DNSEvidence []string
	DNSFailed   string
	DNSCauses   []model.Finding

	// The Service: its shared diagnosis, whether it has the port, and what
	// its endpoints answered directly on the target port.
	ServiceRef     nodenet.ServiceRef
	ServiceFinding []model.Finding
	ServicePorts   []string
	PortMatched    bool
	TargetPort     string
	Backends       []Backend
	Direct         []ops.Result

	// Policy is the policy engine's answer for source → destination (the
	// first endpoint for a Service); nil when policies were not read.
	Policy        *model.Finding
	PolicyAllowed bool

	SrcFacts, DstFacts *nodenet.Node
	Proxy              kube.KubeProxy
	NodeToTarget       []ops.Result // off-cluster: the source node itself tried the target
	Live               []ops.Result
	Captures           []string
	// HostSend says the source is a node: its traffic is the host's.
	HostSend bool
}

// hop is one hop's verdict: its findings (a shared cause first when it has
// one) and whether it breaks the connection.
type hop struct {
	id     string
	out    []model.Finding
	broken bool
}

// Analyze walks the hops in order; the first broken one carries the root
// cause and fix, and the hops after it are not reached.
func Analyze(in Input) []model.Finding {
	subj := &model.Subject{Kind: "Connection", Name: in.From + " -> " + in.To}
	steps := []func(Input, *model.Subject) (hop, bool){dnsHop, serviceHop, policyHop, sourceNodeHop, destinationHop, connectionHop}
	var out []model.Finding
	broken := ""
	for i, step := range steps {
		if broken != "" {
			out = append(out, notReached(Hops[i], subj, broken))
			continue
		}
		h, applies := step(in, subj)
		if !applies {
			continue
		}
		out = append(out, h.out...)
		if h.broken {
			broken = Hops[i]
		}
	}
	return out
}

func notReached(id string, subj *model.Subject, after string) model.Finding {
	return model.Finding{ID: id, Status: model.StatusSkip, Subject: subj,
		Title:    hopName(id) + ": not reached (the connection breaks at " + hopName(after) + ")",
		Evidence: []string{"not checked: an earlier hop already breaks the connection"}}.WithKey("")
}

func hopName(id string) string {
	return map[string]string{IDDNS: "name resolution", IDService: "Service and endpoints", IDPolicy: "NetworkPolicy",
		IDSourceNode: "source node", IDDestination: "destination", IDConnection: "connection"}[id]
}

func pass(id string, subj *model.Subject, title string, ev ...string) hop {
	return hop{id: id, out: []model.Finding{model.Finding{ID: id, Status: model.StatusPass, Subject: subj,
		Title: hopName(id) + ": " + title, Evidence: ev}.WithKey("")}}
}

// fail is a broken hop with the probe's own root cause.
func fail(id string, subj *model.Subject, title, cause string, ev []string, fixes ...model.Fix) hop {
	return hop{id: id, broken: true, out: []model.Finding{model.Finding{ID: id, Status: model.StatusFail, Subject: subj,
		Title: hopName(id) + ": " + title, RootCause: cause, Evidence: ev, Fixes: fixes}.WithKey("")}}
}

// cited is a broken hop whose cause is a shared finding.
func cited(id string, subj *model.Subject, title string, cause model.Finding, ev []string) hop {
	f := model.Finding{ID: id, Status: model.StatusFail, Subject: subj, Title: hopName(id) + ": " + title, Evidence: ev}.WithKey("")
	return hop{id: id, broken: true, out: []model.Finding{cause, f.Symptom(cause)}}
}

func dnsHop(in Input, subj *model.Subject) (hop, bool) {
	if in.Name == "" {
		return hop{}, false
	}
	if in.Resolved != "" {
		return pass(IDDNS, subj, fmt.Sprintf("%s resolves to %s as the source resolves it", in.Name, in.Resolved), in.DNSEvidence...), true
	}
	ev := append([]string{"resolving " + in.Name + " from " + in.SenderRef + ": " + in.DNSFailed}, in.DNSEvidence...)
	for _, c := range in.DNSCauses {
		if c.Status.Failing() {
			return cited(IDDNS, subj, in.Name+" does not resolve", c, ev), true
		}
	}
	cause := fmt.Sprintf("%s does not resolve from the source (%s), while the cluster DNS itself is healthy: the name does not exist, or the source's search path does not complete it.", in.Name, in.DNSFailed)
	return fail(IDDNS, subj, in.Name+" does not resolve", cause, ev,
		model.Fix{Description: "Check the name and how the source's search path completes it (a Service is <name>.<namespace>.svc.<cluster domain>):",
			Commands: []string{"kubectl get services -A | grep " + firstLabel(in.Name), "netsleuth check --probe dns"}}), true
}

func firstLabel(name string) string { l, _, _ := strings.Cut(name, "."); return l }

func serviceHop(in Input, subj *model.Subject) (hop, bool) {
	if in.DestKind != ToService {
		return hop{}, false
	}
	ref := in.ServiceRef.Ref()
	for _, f := range in.ServiceFinding {
		if f.Status.Failing() {
			return cited(IDService, subj, "Service "+ref+" has no working endpoint", f, nil), true
		}
	}
	if !in.PortMatched {
		return fail(IDService, subj, fmt.Sprintf("Service %s has no port %d/%s", ref, in.Port, in.Proto),
			fmt.Sprintf("Service %s does not serve port %d/%s (its ports: %s), so connections to %s:%d are refused.", ref, in.Port, in.Proto, strings.Join(in.ServicePorts, ", "), in.Dest, in.Port),
			[]string{"Service ports: " + strings.Join(in.ServicePorts, ", ")},
			model.Fix{Description: "Connect to one of the Service's ports, or add the port to the Service:",
				Commands: []string{fmt.Sprintf("kubectl -n %s get service %s -o jsonpath='{.spec.ports}'", in.ServiceRef.Namespace, in.ServiceRef.Name)}}), true
	}
	var ev []string
	refused := 0
	for i, r := range in.Direct {
		ev = append(ev, fmt.Sprintf("%s → endpoint %s:%d (%s): %s", in.SenderRef, in.Backends[i].IP, in.Backends[i].Port, in.Backends[i].Pod, agent.Outcome(r)))
		if r.NotListening() {
			refused++
		}
	}
	summary := fmt.Sprintf("Service %s port %d → targetPort %s on %d ready endpoint(s)", ref, in.Port, in.TargetPort, len(in.Backends))
	if len(in.Direct) > 0 && refused == len(in.Direct) {
		return fail(IDService, subj, fmt.Sprintf("the endpoints of %s refuse targetPort %s", ref, in.TargetPort),
			fmt.Sprintf("Every endpoint of Service %s answers a connection to targetPort %s with a reset: the packets arrive, so the network works, but nothing listens on %s in the pods: the Service's targetPort does not match the port the application listens on.", ref, in.TargetPort, in.TargetPort),
			append([]string{summary}, ev...),
			model.Fix{Description: "Point the Service's targetPort at the port the pods listen on (their declared containerPorts are the usual answer):",
				Commands: []string{fmt.Sprintf("kubectl -n %s get pods -l \"$(kubectl -n %s get service %s -o jsonpath='{.spec.selector}' | tr -d '{}\"' | tr : =)\" -o jsonpath='{..containerPort}'", in.ServiceRef.Namespace, in.ServiceRef.Namespace, in.ServiceRef.Name),
					fmt.Sprintf("kubectl -n %s patch service %s --type json -p '[{\"op\":\"replace\",\"path\":\"/spec/ports/0/targetPort\",\"value\":<port>}]'", in.ServiceRef.Namespace, in.ServiceRef.Name)}}), true
	}
	return pass(IDService, subj, summary, ev...), true
}

func policyHop(in Input, subj *model.Subject) (hop, bool) {
	if in.Policy == nil {
		return hop{}, false
	}
	p := *in.Policy
	if in.PolicyAllowed {
		return pass(IDPolicy, subj, "no NetworkPolicy stops it ("+p.Title+")", p.Evidence...), true
	}
	if ops.Arrived(in.Live) {
		f := model.Finding{ID: IDPolicy, Status: model.StatusWarn, Subject: subj,
			Title:     hopName(IDPolicy) + ": denied by policy, yet the traffic arrives",
			RootCause: p.RootCause + " Yet the live traffic arrived, so this cluster's CNI does not enforce NetworkPolicy (run the policy probe for the details).",
			Evidence:  p.Evidence,
			Fixes:     []model.Fix{{Description: "Check that a CNI or policy agent enforcing NetworkPolicy runs on every node:", Commands: []string{"netsleuth check --probe policy --from <ns>/<pod> --to <ns>/<pod>:<port>"}}}}.WithKey("")
		return hop{id: IDPolicy, out: []model.Finding{f}}, true
	}
	return fail(IDPolicy, subj, p.Title, p.RootCause, p.Evidence, p.Fixes...), true
}

// path is the connection's first packet as the source node forwards it.
func (in Input) path() nodenet.Path {
	dst, dnet := in.Dest, in.DestNet
	if in.DestKind == ToService && len(in.Backends) > 0 {
		if a, err := netip.ParseAddr(in.Backends[0].IP); err == nil {
			dst, dnet = a, "" // kube-proxy rewrote the ClusterIP to an endpoint
		}
	}
	return nodenet.Path{Src: in.SrcIP, Dst: dst, DstNet: dnet, Proto: in.Proto, DPort: in.Port,
		OffCluster: in.DestKind == ToAddress, AllowDefault: in.DestKind == ToAddress}
}

func sourceNodeHop(in Input, subj *model.Subject) (hop, bool) {
	if in.SrcFacts == nil || in.HostSend {
		return hop{}, false
	}
	n := *in.SrcFacts
	ev := append([]string{}, n.Facts.Errors...)
	if in.DestKind == ToService {
		if cause, broken := nodenet.KubeProxy(n, in.ServiceRef, in.Proxy); broken {
			return cited(IDSourceNode, subj, "kube-proxy does not translate "+in.ServiceRef.Ref()+" on node "+n.Name, cause, ev), true
		}
		r := nodenet.KubeProxyRules(n.Facts.IPTables, in.ServiceRef)
		if len(r.DNAT) > 0 {
			ev = append(ev, fmt.Sprintf("node agent on %s: kube-proxy DNATs %s to %s", n.Name, in.ServiceRef.Ref(), strings.Join(r.DNAT, ", ")))
		}
	}
	p := in.path()
	if cause, broken := nodenet.Explain(n, p); broken {
		return cited(IDSourceNode, subj, fmt.Sprintf("node %s does not pass the traffic on to %s", n.Name, p.Dst), cause, ev), true
	}
	what := "forwards"
	if p.OffCluster {
		what = "forwards and source-NATs"
	}
	return pass(IDSourceNode, subj, fmt.Sprintf("node %s %s the traffic to %s (ip_forward, route, FORWARD%s)", n.Name, what, p.Dst, map[bool]string{true: ", NAT"}[p.OffCluster]), ev...), true
}

func destinationHop(in Input, subj *model.Subject) (hop, bool) {
	ev := liveEvidence(in)
	switch {
	case in.DestKind == ToAddress:
		if len(in.NodeToTarget) > 0 && !ops.Arrived(in.NodeToTarget) && !ops.Arrived(in.Live) {
			if in.SrcFacts != nil {
				if cause, broken := nodenet.Route(*in.SrcFacts, in.path()); broken {
					return cited(IDDestination, subj, fmt.Sprintf("node %s has no route to %s", in.SrcNode, in.Dest), cause, ev), true
				}
			}
			return fail(IDDestination, subj, fmt.Sprintf("%s does not answer, from the source or its node", in.Dest),
				fmt.Sprintf("Neither the source nor its node %s gets an answer from %s:%d: the target is down or something beyond the node (a router, a firewall, an ACL on the target) drops the traffic.", in.SrcNode, in.Dest, in.Port),
				append(ev, nodeEvidence(in)...),
				model.Fix{Description: "Check the target is up and listening, and the path from the node to it:", Node: in.SrcNode,
					Commands: []string{"ping -c3 " + in.Dest.String(), "traceroute -n " + in.Dest.String()}}), true
		}
	case in.DstFacts != nil:
		dst := *in.DstFacts
		back := nodenet.Path{Src: in.path().Dst, Dst: in.SrcIP, Proto: in.Proto}
		if cause, broken := nodenet.Explain(dst, back); broken {
			return cited(IDDestination, subj, fmt.Sprintf("node %s does not pass the traffic to and from the destination", dst.Name), cause, ev), true
		}
	}
	if refusedAll(in.Live) {
		target := fmt.Sprintf("%s:%d", in.Dest, in.Port)
		return fail(IDDestination, subj, fmt.Sprintf("%s refuses the connection: nothing listens on port %d", target, in.Port),
			fmt.Sprintf("%s answers %s with a reset: the packets arrive, so the network path works, but no process listens on %s/%d there.", target, in.Proto, in.Proto, in.Port),
			ev, model.Fix{Description: "Check what the destination listens on, and that the client uses that port:",
				Commands: []string{listenCheck(in)}}), true
	}
	what := in.Dest.String()
	if in.DestKind == ToService && len(in.Backends) > 0 {
		what = fmt.Sprintf("endpoint %s:%d (%s)", in.Backends[0].IP, in.Backends[0].Port, in.Backends[0].Pod)
	}
	return pass(IDDestination, subj, what+" is reachable", ev...), true
}

func listenCheck(in Input) string {
	if in.DestKind == ToAddress {
		return fmt.Sprintf("nc -vz -w2 %s %d   # from the source; then on the target: ss -ltnp", in.Dest, in.Port)
	}
	return "kubectl exec <destination pod> -- netstat -ltn   # or ss -ltn; compare with the containerPorts it declares"
}

// refusedAll reports whether the target refused or reset the attempts
// and answered none: the packets arrive, nothing listens.
func refusedAll(rs []ops.Result) bool {
	return slices.ContainsFunc(rs, ops.Result.NotListening) && !slices.ContainsFunc(rs, ops.Result.Reached)
}

func connectionHop(in Input, subj *model.Subject) (hop, bool) {
	ev := append(liveEvidence(in), in.Captures...)
	if ops.Arrived(in.Live) {
		return pass(IDConnection, subj, fmt.Sprintf("%s connects to %s:%d/%s", in.From, in.Dest, in.Port, in.Proto), ev...), true
	}
	what := "times out"
	for _, r := range in.Live {
		if r.Outcome != ops.Timeout && r.Outcome != ops.OK {
			what = "fails: " + string(r.Outcome)
		}
	}
	return fail(IDConnection, subj, fmt.Sprintf("the connection to %s:%d %s", in.Dest, in.Port, what),
		fmt.Sprintf("The connection from %s to %s:%d/%s %s although every hop before it checks out: packets are lost between the nodes or beyond them (a firewall, a security group, the overlay's ports, or a CNI rule netsleuth cannot read); the capture evidence shows where they stop.", in.From, in.Dest, in.Port, in.Proto, what),
		ev, model.Fix{Description: "See what the network between the nodes drops:",
			Commands: []string{"netsleuth check --probe pod-to-pod", fmt.Sprintf("netsleuth capture --pod <source pod> --peer %s:%d", in.Dest, in.Port)}}), true
}

func liveEvidence(in Input) []string {
	var ev []string
	for _, r := range in.Live {
		ev = append(ev, fmt.Sprintf("%s → %s: %s", in.SenderRef, agent.Describe(r), agent.Outcome(r)))
	}
	return append(ev, in.Notes...)
}

func nodeEvidence(in Input) []string {
	var ev []string
	for _, r := range in.NodeToTarget {
		ev = append(ev, fmt.Sprintf("node %s itself → %s: %s", in.SrcNode, agent.Describe(r), agent.Outcome(r)))
	}
	return ev
}
