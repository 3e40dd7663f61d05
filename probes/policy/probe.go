package policy

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/source"
)

type probe struct{}

// New returns the NetworkPolicy probe: lint always, and with --from/--to the
// static answer to "can A reach B on port P?". --from ns/* --to ns/*:port
// prints the reachability matrix of those namespaces.
func New() probes.Probe { return probe{} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID: "policy", Title: "NetworkPolicy reachability", Scenario: "D", Default: true,
		Description: "Explains whether NetworkPolicies let pod A reach B on a port (B a pod, a Service's endpoints, an IP or a CIDR), which policy and rule decide it, verifies the answer with real traffic from a stand-in for A (a contradiction means the CNI does not enforce NetworkPolicy), and lints policies (DNS blocked, selectors matching nothing, missing named ports).",
		RBAC:        model.MergePermissions(RBACLoad, source.RBAC, rbacService, agent.RBACSender, agent.RBAC, kube.RBACCNI),
		Inputs: []model.Input{
			{Flag: "from", Description: "source: ns/pod, ns/deployment/name, an IP, or ns/* for a matrix", Example: "default/client", Check: CheckFrom, With: "to"},
			{Flag: "to", Description: "destination: ns/pod:port[/proto], ns/svc/name:port, IP:port, CIDR:port, or ns/*:port[/proto] for a matrix", Example: "default/server:80", Check: CheckTo, With: "from"},
			{Flag: "policy-live", Description: "verify a --from/--to answer with real traffic: standin (default: a never-ready pod with the source's labels on its node), ephemeral (a container in the source pod) or off",
				Example: "ephemeral", Check: CheckLiveMode},
		},
	}
}

// Preflight checks, when a question is asked, that the pod or workload
// --from names and the pod or Service --to names exist, before anything is
// created.
func (probe) Preflight(ctx context.Context, env *probes.Env) error {
	o := env.Options
	if o.To == "" {
		return nil
	}
	if r, ok := source.Given(o); ok && r.Kind != "" {
		if err := source.Preflight(ctx, env.Kube, o); err != nil {
			return err
		}
	} else if ok {
		if err := podExists(ctx, env, "from", r.Namespace, r.Name); err != nil {
			return err
		}
	}
	target, _, _ := strings.Cut(o.To, ":")
	if ns, name, ok := ServiceRef(target); ok {
		_, err := env.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return &probes.InputError{Flag: "to", Err: fmt.Errorf("Service %s/%s not found (kubectl -n %s get services)", ns, name, ns)}
		}
		return err
	}
	if ns, name, ok := probes.PodRef(o.To); ok && !strings.HasSuffix(target, "/*") {
		return podExists(ctx, env, "to", ns, name)
	}
	return nil
}

func podExists(ctx context.Context, env *probes.Env, flag, ns, name string) error {
	_, err := env.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &probes.InputError{Flag: flag, Err: fmt.Errorf("pod %s/%s not found (kubectl -n %s get pods)", ns, name, ns)}
	}
	return err
}

func (probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	e, err := Load(ctx, env, rec)
	if err != nil {
		return err
	}
	if env.Options.To != "" { // --from alone is for the probes that ask from a workload
		fs, err := e.answer(ctx, env, rec)
		for _, f := range fs {
			rec.Finding(f)
		}
		if err != nil {
			return err
		}
	}
	rec.Stage("linting policies")
	lint := e.Lint(env.Namespace)
	for _, f := range lint {
		rec.Finding(f)
	}
	if len(lint) == 0 {
		rec.Finding(model.Finding{ID: "policy.lint-clean", Status: model.StatusPass, Subject: &model.Subject{Kind: "Cluster"},
			Title: fmt.Sprintf("%d NetworkPolicies over %d pods: none blocks DNS, selects nothing or names a missing port", len(e.Policies), len(e.Pods))})
	}
	return nil
}

// RBACLoad is what Load reads.
var RBACLoad = model.MergePermissions(kube.RBACNamespaces, kube.RBACPods, kube.RBACNetworkPolicies)

// Load lists pods, namespaces and NetworkPolicies in every namespace (peers
// may live anywhere) and compiles them.
func Load(ctx context.Context, env *probes.Env, rec probes.Recorder) (*Engine, error) {
	rec.Stage("listing namespaces, pods and networkpolicies")
	snap := env.Snap()
	nsl, err := snap.Namespaces(ctx)
	if err != nil {
		return nil, err
	}
	pl, err := snap.AllPods(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing pods in all namespaces (needs list on pods): %w", err)
	}
	npl, err := snap.NetworkPolicies(ctx)
	if err != nil {
		return nil, err
	}
	namespaces := make([]Namespace, len(nsl))
	for i := range nsl {
		namespaces[i] = NamespaceFromKube(&nsl[i])
	}
	var pods []Pod
	for i := range pl {
		if pl[i].Status.Phase == "Succeeded" || pl[i].Status.Phase == "Failed" {
			continue
		}
		pods = append(pods, PodFromKube(&pl[i]))
	}
	policies := make([]*networkingv1.NetworkPolicy, len(npl))
	for i := range npl {
		policies[i] = &npl[i]
	}
	rec.Stage("compiling policies")
	return Compile(pods, namespaces, policies), nil
}

// answer answers --from/--to statically and, for a pod source, verifies
// the answer with real traffic (--policy-live). A workload source is read
// as one of its pods; a Service destination as its endpoints' pods on the
// port its port maps to.
func (e *Engine) answer(ctx context.Context, env *probes.Env, rec probes.Recorder) ([]model.Finding, error) {
	mode, err := ParseLiveMode(env.Options.PolicyLive)
	if err != nil {
		return nil, err
	}
	rec.Stage("evaluating the question")
	from := env.Options.From
	if r, ok := source.Given(env.Options); ok && r.Kind != "" {
		p, err := source.Pod(ctx, env.Kube, r)
		if err != nil {
			return nil, err
		}
		from = p.Namespace + "/" + p.Name
	}
	qs, err := e.serviceQuestions(ctx, env, from, env.Options.To)
	if err != nil {
		return nil, err
	}
	if qs == nil {
		f, q, err := e.question(from, env.Options.To)
		if err != nil {
			return nil, err
		}
		if q == nil { // a matrix
			return []model.Finding{f}, nil
		}
		qs = []asked{{q: *q, f: f}}
	}
	var out []model.Finding
	for _, a := range qs {
		fs, err := e.verifyLive(ctx, env, rec, a.q, a.f, mode)
		out = append(out, fs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// asked is one question with its static answer.
type asked struct {
	q question
	f model.Finding
}

// Question answers --from/--to statically, as one finding.
func (e *Engine) Question(from, to string) (model.Finding, error) {
	f, _, err := e.question(from, to)
	return f, err
}

// question answers --from/--to statically; q is nil for a matrix.
func (e *Engine) question(from, to string) (model.Finding, *question, error) {
	toTarget, portStr, ok := strings.Cut(to, ":")
	if from == "" || !ok {
		return model.Finding{}, nil, fmt.Errorf("the policy question needs --from ns/pod (or an IP) and --to ns/pod:port[/proto], got --from %q --to %q", from, to)
	}
	port, err := ParsePort(portStr)
	if err != nil {
		return model.Finding{}, nil, err
	}
	if strings.HasSuffix(from, "/*") || strings.HasSuffix(toTarget, "/*") {
		return e.matrixFinding(from, toTarget, port), nil, nil
	}
	src, err := e.resolve(from, true)
	if err != nil {
		return model.Finding{}, nil, err
	}
	dst, err := e.resolve(toTarget, true)
	if err != nil {
		return model.Finding{}, nil, err
	}
	q := &question{src: src, dst: dst, port: port, verdict: e.Check(src, dst, port)}
	return e.Finding(src, dst, q.verdict), q, nil
}

func (e *Engine) resolve(s string, allowIP bool) (Endpoint, error) {
	if ip, err := netip.ParseAddr(s); err == nil && allowIP {
		return e.IPEndpoint(ip), nil
	}
	if pf, err := netip.ParsePrefix(s); err == nil && allowIP {
		return e.IPEndpoint(pf.Masked().Addr().Next()), nil // a CIDR is asked about at its first host
	}
	ep, ok := e.PodEndpoint(s)
	if !ok {
		return ep, fmt.Errorf("pod %q not found (want namespace/name of a running pod)", s)
	}
	return ep, nil
}

// matrixFinding renders the truth table of the pods of the namespaces named
// "ns/*" on both sides.
func (e *Engine) matrixFinding(from, to string, port Port) model.Finding {
	want := map[string]bool{}
	for _, s := range []string{from, to} {
		if ns, ok := strings.CutSuffix(s, "/*"); ok {
			want[ns] = true
		} else if i, ok := e.podIndex[s]; ok {
			want[e.Pods[i].Namespace] = true
		}
	}
	var pods []int
	for i := range e.Pods {
		if want[e.Pods[i].Namespace] || want["*"] {
			pods = append(pods, i)
		}
	}
	m := e.Matrix([]Port{port}, pods)
	denied := 0
	for _, s := range pods {
		for _, d := range pods {
			if !m.Allowed(0, s, d) {
				denied++
			}
		}
	}
	return model.Finding{
		ID: "policy.matrix", Status: model.StatusPass,
		Title:    fmt.Sprintf("reachability matrix on %s: %d of %d pairs denied", port, denied, len(pods)*len(pods)),
		Evidence: strings.Split(strings.TrimRight(m.TruthTable(0), "\n"), "\n"),
	}
}

// Creates reports whether a run with o creates a stand-in or an ephemeral
// container: only to verify a --from/--to answer with live traffic.
func (probe) Creates(o probes.Options) bool {
	return o.To != "" && o.PolicyLive != "off"
}

// AgentsFor declares, when a --from/--to answer is verified live, the node
// agents that read felix's rules and health on a Calico cluster (the
// sender's and the destination's nodes only, so not the whole sample). The
// run's namespace must admit them before the first agent starts; on other
// CNIs none starts.
func (p probe) AgentsFor(o probes.Options) []model.AgentUse {
	if !p.Creates(o) {
		return nil
	}
	return []model.AgentUse{{Kind: model.AgentNode}}
}
