package policy

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/nodenet"
)

// LiveMode says how a --from/--to question is verified with real traffic.
type LiveMode string

// The --policy-live values.
const (
	// LiveStandIn places a stand-in pod for the source: same namespace,
	// labels and node, never ready. The default.
	LiveStandIn LiveMode = "standin"
	// LiveEphemeral adds an ephemeral container to the source pod itself.
	LiveEphemeral LiveMode = "ephemeral"
	// LiveOff answers statically only.
	LiveOff LiveMode = "off"
)

// ParseLiveMode reads --policy-live; "" means standin.
func ParseLiveMode(s string) (LiveMode, error) {
	switch m := LiveMode(strings.ToLower(s)); m {
	case "":
		return LiveStandIn, nil
	case LiveStandIn, LiveEphemeral, LiveOff:
		return m, nil
	}
	return "", fmt.Errorf("--policy-live %q: want standin, ephemeral or off", s)
}

// Attempts and pauses while live traffic contradicts the static verdict: an
// enforcer programs a new pod's rules asynchronously.
var liveRetry = []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}

// liveTimeout bounds one TCP connect or UDP echo.
const liveTimeout = 2 * time.Second

// question is one resolved --from/--to question.
type question struct {
	src, dst Endpoint
	port     Port
	verdict  Verdict
}

// addr is the address live traffic goes to: the destination pod's first
// IP, or the address asked about.
func (e *Engine) addr(ep Endpoint) (netip.Addr, bool) {
	if ep.Pod < 0 {
		return ep.IP, ep.IP.IsValid()
	}
	if ips := e.Pods[ep.Pod].IPs; len(ips) > 0 {
		return ips[0], true
	}
	return netip.Addr{}, false
}

func (e *Engine) addrOK(ep Endpoint) bool { _, ok := e.addr(ep); return ok }

// node is the endpoint's node: a pod's, "" for an address.
func (e *Engine) node(ep Endpoint) string {
	if ep.Pod < 0 {
		return ""
	}
	return e.Pods[ep.Pod].Node
}

// hostNetwork reports whether the endpoint is a pod on its node's network.
func (e *Engine) hostNetwork(ep Endpoint) bool { return ep.Pod >= 0 && e.Pods[ep.Pod].HostNetwork }

// verifyLive sends the question's real traffic and returns the verdict
// finding with the live evidence, plus the finding explaining a
// contradiction or an agent that did not start. An error means the run
// lacks a permission; f is still worth recording.
func (e *Engine) verifyLive(ctx context.Context, env *probes.Env, rec probes.Recorder, q question, f model.Finding, mode LiveMode) ([]model.Finding, error) {
	if why := e.liveSkip(env, q, mode); why != "" {
		f.Evidence = append(f.Evidence, "not verified live: "+why)
		return []model.Finding{f}, nil
	}
	src := &e.Pods[q.src.Pod]
	a, err := agent.StartSender(ctx, env, rec, agent.StandInFor{Namespace: src.Namespace, Pod: src.Name, Node: src.Node, Labels: src.Labels}, mode == LiveEphemeral)
	if err != nil || a.Err != nil {
		f.Evidence = append(f.Evidence, "not verified live: the agent sending as "+src.Key()+" did not start")
		if err != nil {
			return []model.Finding{f}, err
		}
		return append([]model.Finding{f}, agent.NotStarted("policy", a)...), nil
	}
	v, note := q.verdict, e.senderNote(a, mode, env.RunID)
	if mode == LiveStandIn {
		var differs string
		v, differs = e.standInVerdict(q, a, env.RunID)
		if differs != "" {
			f.Evidence = append(f.Evidence, note, "not verified live: "+differs)
			return []model.Finding{f}, nil
		}
	}
	var felix []nodenet.Felix
	if cni := kube.DiscoverCNI(ctx, env.Snap()); cni.Name == "calico" {
		var notStarted []model.Finding
		felix, notStarted, err = felixOn(ctx, env, rec, cni.Calico, felixNodes(a.Node, e.node(q.dst)), a)
		if err != nil {
			return []model.Finding{f}, err
		}
		if len(notStarted) > 0 {
			f.Evidence = append(f.Evidence, note, notVerifiedNoAgent(notStarted))
			return append([]model.Finding{f}, notStarted...), nil
		}
		if causes := staleFelix(felix); len(causes) > 0 {
			f.Evidence = append(f.Evidence, note, notVerifiedStale(causes))
			return append([]model.Finding{f}, causes...), nil
		}
	}
	return e.sendAndCompare(ctx, env, rec, q, f, a, v, note, felix)
}

// sendAndCompare sends the question's traffic from a and compares it with
// the verdict v; felix is Calico's state on the nodes, when read.
func (e *Engine) sendAndCompare(ctx context.Context, env *probes.Env, rec probes.Recorder, q question, f model.Finding, a probes.Agent, v Verdict, note string, felix []nodenet.Felix) ([]model.Finding, error) {
	rec.Stage(fmt.Sprintf("sending %s to %s from %s", q.port, e.endpointName(q.dst), a.Ref()))
	live, err := e.send(ctx, env, a, q, v)
	if err != nil {
		f.Evidence = append(f.Evidence, note, "not verified live: "+err.Error())
		return []model.Finding{f}, nil
	}
	evidence, contradiction := Diagnose(Comparison{Verdict: v, Subject: f.Subject, Static: f.Evidence, DstHostNetwork: e.hostNetwork(q.dst), Live: live})
	f.Evidence = append(f.Evidence, note, evidence)
	out := []model.Finding{f}
	if contradiction != nil {
		contradiction.Evidence = append(contradiction.Evidence, note)
		if contradiction.ID == IDNotEnforced {
			withFelix(contradiction, felix)
		}
		out = append(out, *contradiction)
	}
	return out, nil
}

// liveSkip says why the question cannot be verified live ("" when it can).
func (e *Engine) liveSkip(env *probes.Env, q question, mode LiveMode) string {
	switch {
	case mode == LiveOff:
		return "--policy-live=off"
	case q.src.Pod < 0:
		return "the source is an IP, not a pod, so there is nothing to stand in for"
	case e.Pods[q.src.Pod].HostNetwork:
		return "the source uses the host network; a stand-in would need hostNetwork, which netsleuth does not create for this"
	case !e.addrOK(q.dst):
		return "the destination has no IP yet"
	case q.port.Protocol != corev1.ProtocolTCP && q.port.Protocol != corev1.ProtocolUDP:
		return "agents send TCP and UDP only, not " + string(q.port.Protocol)
	case env.Agents == nil:
		return "this run has no agents"
	}
	if _, ok := env.Agents.(agent.StandInAgents); !ok {
		return "this run's agents cannot stand in for a pod"
	}
	return ""
}

// senderNote says in evidence who sent the traffic and what differs from
// the real source.
func (e *Engine) senderNote(a probes.Agent, mode LiveMode, runID string) string {
	if mode == LiveEphemeral {
		return fmt.Sprintf("sender: ephemeral container %s in %s/%s (%s) on node %s: the pod's own network namespace and labels; "+
			"Kubernetes cannot remove an ephemeral container, so it stays in the pod's spec and its process exits on its own",
			agent.EphemeralName(runID), a.Namespace, a.Pod, a.IP, a.Node)
	}
	selecting := "no NetworkPolicy selects on those keys"
	if keyed := e.PoliciesSelectingKeys(agent.AddedLabelKeys()); len(keyed) > 0 {
		selecting = "NetworkPolicies selecting on those keys: " + strings.Join(keyed, ", ")
	}
	return fmt.Sprintf("sender: stand-in pod %s/%s (%s) on node %s with the source's labels plus %s (added by netsleuth; %s); "+
		"it never becomes ready, so no Service sends it traffic, and it is deleted with the run",
		a.Namespace, a.Pod, a.IP, a.Node, strings.Join(agent.AddedLabelKeys(), ", "), selecting)
}

// standInVerdict compiles the policies again with the stand-in added and
// answers the question for it. differs explains why the stand-in cannot
// speak for the source: a policy selects on a label netsleuth added, or an
// ipBlock tells the two addresses apart.
func (e *Engine) standInVerdict(q question, a probes.Agent, runID string) (Verdict, string) {
	src := e.Pods[q.src.Pod]
	p := Pod{Namespace: a.Namespace, Name: a.Pod, Labels: agent.StandInLabels(runID, src.Labels), Node: a.Node}
	if ip, err := netip.ParseAddr(a.IP); err == nil {
		p.IPs = []netip.Addr{ip}
	}
	pods := append(slices.Clone(e.Pods), p)
	nss := make([]Namespace, 0, len(e.Namespaces))
	for _, n := range e.Namespaces {
		nss = append(nss, n)
	}
	e2 := Compile(pods, nss, e.Policies)
	v := e2.Check(Endpoint{Pod: len(pods) - 1}, q.dst, q.port)
	v.From = src.Key()
	if keyed := e.PoliciesSelectingKeys(agent.AddedLabelKeys()); len(keyed) > 0 && v.Allowed() != q.verdict.Allowed() {
		return v, fmt.Sprintf("%s select on labels netsleuth adds to its stand-in, so the stand-in's verdict differs from %s's; use --policy-live=ephemeral",
			strings.Join(keyed, ", "), src.Key())
	}
	if v.Allowed() != q.verdict.Allowed() {
		return v, fmt.Sprintf("the policies treat the stand-in's address %s differently from %s's (an ipBlock rule); use --policy-live=ephemeral", a.IP, src.Key())
	}
	return v, ""
}

// PoliciesSelectingKeys names the policies whose pod selectors (the
// policy's own or a peer's) mention one of keys.
func (e *Engine) PoliciesSelectingKeys(keys []string) []string {
	var out []string
	for _, np := range e.Policies {
		sels := []*metav1.LabelSelector{&np.Spec.PodSelector}
		for _, r := range np.Spec.Ingress {
			for _, p := range r.From {
				sels = append(sels, p.PodSelector)
			}
		}
		for _, r := range np.Spec.Egress {
			for _, p := range r.To {
				sels = append(sels, p.PodSelector)
			}
		}
		if slices.ContainsFunc(sels, func(s *metav1.LabelSelector) bool { return selectorMentions(s, keys) }) {
			out = append(out, np.Namespace+"/"+np.Name)
		}
	}
	return out
}

func selectorMentions(s *metav1.LabelSelector, keys []string) bool {
	if s == nil {
		return false
	}
	for k := range s.MatchLabels {
		if slices.Contains(keys, k) {
			return true
		}
	}
	return slices.ContainsFunc(s.MatchExpressions, func(r metav1.LabelSelectorRequirement) bool { return slices.Contains(keys, r.Key) })
}

// send runs the TCP connect or UDP echo from a to the destination, again
// while the answer contradicts v (the enforcer may not have programmed the
// new pod yet).
func (e *Engine) send(ctx context.Context, env *probes.Env, a probes.Agent, q question, v Verdict) (Live, error) {
	to, _ := e.addr(q.dst)
	op := ops.Op{Kind: ops.TCP, Target: to.String(), Port: int(q.port.Port), TimeoutMs: int(liveTimeout / time.Millisecond)}
	if q.port.Protocol == corev1.ProtocolUDP {
		op.Kind, op.Count = ops.UDP, 3
	}
	live := Live{Via: fmt.Sprintf("%s %s/%s (%s) on node %s", senderKind(a), a.Namespace, a.Pod, a.IP, a.Node), SameNode: a.Node == e.node(q.dst)}
	resp, n, err := UntilAgrees(ctx, func(ctx context.Context) (ops.Response, error) {
		return env.Agents.Exec(ctx, a, ops.Request{Ops: []ops.Op{op}})
	}, func(resp ops.Response) bool {
		return Comparison{Verdict: v, Live: Live{Result: resp.Results[0]}}.Agrees()
	})
	if err != nil {
		return live, err
	}
	live.Result, live.Attempts = resp.Results[0], n
	return live, nil
}

// UntilAgrees runs send, and again while agrees says its answer contradicts
// the policies' verdict, pausing between attempts: an enforcer programs a
// new pod's rules asynchronously, so a fresh stand-in's first packets may
// meet none yet. It returns the last answer and how many times it was sent.
func UntilAgrees[T any](ctx context.Context, send func(context.Context) (T, error), agrees func(T) bool) (T, int, error) {
	for i := 0; ; i++ {
		got, err := send(ctx)
		if err != nil || agrees(got) || i == len(liveRetry) {
			return got, i + 1, err
		}
		select {
		case <-ctx.Done():
			return got, i + 1, nil
		case <-time.After(liveRetry[i]):
		}
	}
}

func senderKind(a probes.Agent) string {
	if a.Kind == agent.AgentEphemeral {
		return "ephemeral container in"
	}
	return "stand-in pod"
}
