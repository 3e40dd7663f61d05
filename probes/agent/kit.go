package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// ErrNoAgents is returned when a probe that needs agents runs without them.
var ErrNoAgents = errors.New("this run has no agent manager (active probes need `netsleuth check` against a cluster)")

// RBAC is what the pod and node agents need, for probes' Info: the
// manager's calls and the check for an earlier run's leftovers.
var RBAC = model.MergePermissions(rbacManager, rbacFind)

// Started splits agents into those running and those that did not start.
// An RBAC denial is returned as an error so the runner names the permission.
func Started(as []probes.Agent) (ok, failed []probes.Agent, err error) {
	for _, a := range as {
		switch {
		case a.Err == nil:
			ok = append(ok, a)
		case apierrors.IsForbidden(a.Err) && !isPodSecurity(a.Err):
			return nil, nil, a.Err
		default:
			failed = append(failed, a)
		}
	}
	return ok, failed, nil
}

func isPodSecurity(err error) bool {
	var se *probes.AgentStartError
	return errors.As(err, &se) && se.Reason == "PodSecurity"
}

// StartPods starts pod-network agents of kind on nodes, announcing it.
func StartPods(ctx context.Context, env *probes.Env, rec probes.Recorder, kind probes.AgentKind, nodes []string) (ok, failed []probes.Agent, err error) {
	if env.Agents == nil {
		return nil, nil, ErrNoAgents
	}
	rec.Stage(fmt.Sprintf("starting %s agents on %d node(s) in namespace %s", kind, len(nodes), env.Agents.Namespace()))
	return Started(env.Agents.Start(ctx, kind, nodes))
}

// StartNodes starts privileged hostNetwork node agents, announcing them
// first: they are the only privileged pods netsleuth creates.
func StartNodes(ctx context.Context, env *probes.Env, rec probes.Recorder, why string, nodes []string) (ok, failed []probes.Agent, err error) {
	if env.Agents == nil {
		return nil, nil, ErrNoAgents
	}
	rec.Stage(fmt.Sprintf("creating privileged node agents (hostNetwork, host / mounted read-only) on %s in namespace %s to %s",
		strings.Join(nodes, ", "), env.Agents.Namespace(), why))
	return Started(env.Agents.Start(ctx, probes.AgentNode, nodes))
}

// ReadNodeFacts starts announced node agents on nodes (why says what for)
// and reads their facts: routes, sysctls and iptables-save. It returns the
// facts by node and the agents that did not start.
func ReadNodeFacts(ctx context.Context, env *probes.Env, rec probes.Recorder, why string, nodes []string) (map[string]NodeFacts, []probes.Agent, error) {
	nodeAgents, failed, err := StartNodes(ctx, env, rec, why, nodes)
	if err != nil {
		return nil, nil, err
	}
	rec.Stage("reading node facts")
	return GatherFacts(ctx, env, nodeAgents), failed, nil
}

// NotStarted explains an agent that never ran: the cause, a fact shared by
// every probe that needed an agent there (the image no node can pull, the
// namespace PodSecurity rejects, the node that runs no pods), and the
// probe's own finding as its symptom. Two probes that meet one failed pod
// report one root cause.
func NotStarted(probeID string, a probes.Agent) []model.Finding {
	var se *probes.AgentStartError
	reason, detail := "Error", a.Err.Error()
	if errors.As(a.Err, &se) {
		reason, detail = se.Reason, se.Detail
	} else if probes.APIUnreachable(a.Err) {
		reason = probes.LostAPIServer
	}
	evidence := fmt.Sprintf("pod %s/%s on node %s: %s: %s", a.Namespace, a.Pod, a.Node, reason, detail)
	describe := fmt.Sprintf("kubectl -n %s describe pod %s", a.Namespace, a.Pod)
	node := &model.Subject{Kind: "Node", Name: a.Node}
	cause := model.Finding{Status: model.StatusError, Evidence: []string{evidence}}
	switch reason {
	case "ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName":
		cause.ID = "agent.image-unavailable"
		cause.Title = "The nodes cannot get netsleuth's agent image"
		cause.RootCause = fmt.Sprintf("The agent image is not on the nodes and they cannot pull it (%s), so no agent can run and no traffic could be sent.", reason)
		cause.Fixes = []model.Fix{{Description: "Point --agent-image at an image the nodes can pull (a mirror in your registry for air-gapped clusters), or load the image onto the nodes.",
			Commands: []string{"netsleuth check --agent-image <registry>/netsleuth:<version>", describe}}}
		cause = cause.WithKey("")
	case "PodSecurity":
		cause.ID = "agent.pod-security"
		cause.Title = fmt.Sprintf("PodSecurity admission rejects netsleuth's %s agents in namespace %s", a.Kind, a.Namespace)
		cause.Subject = &model.Subject{Kind: "Namespace", Name: a.Namespace}
		cause.RootCause = fmt.Sprintf("The PodSecurity level of namespace %s does not admit the %s agent.", a.Namespace, a.Kind)
		cause.Fixes = []model.Fix{{Description: "Run the agents in a namespace whose PodSecurity level admits them (node agents need privileged).",
			Commands: []string{"kubectl create namespace netsleuth-agents --dry-run=client -o yaml | kubectl apply -f -",
				"kubectl label --overwrite namespace netsleuth-agents pod-security.kubernetes.io/enforce=privileged",
				"netsleuth check --agent-namespace netsleuth-agents"}}}
		cause = cause.WithKey(string(a.Kind))
	case probes.LostAPIServer:
		cause.ID = "agent.api-unreachable"
		cause.Title = "The API server stopped answering while netsleuth started its agents"
		cause.RootCause = "The Kubernetes API server did not answer while the agent pods were being created or watched (it was restarting, overloaded, or the network to it broke), so no traffic could be sent from there. Nothing on the node is known to be broken."
		cause.Fixes = []model.Fix{{Description: "Check that the API server answers again, then run netsleuth again.",
			Commands: []string{"kubectl get --raw /readyz", "netsleuth check"}}}
		cause = cause.WithKey("")
	case ReasonNoServiceAccount:
		cause.ID = "agent.no-service-account"
		cause.Title = fmt.Sprintf("Namespace %s has no default ServiceAccount, so no pod can start in it", a.Namespace)
		cause.Subject = &model.Subject{Kind: "Namespace", Name: a.Namespace}
		cause.RootCause = fmt.Sprintf("Admission refused the agent pods because namespace %s has no ServiceAccount \"default\" (%s). "+
			"kube-controller-manager's ServiceAccount controller creates it in every new namespace within moments: it is not running, not caught up "+
			"(after an API server restart its watches retry with a back-off), or its serviceaccount controller is disabled. "+
			"This is not a missing RBAC permission.", a.Namespace, saWait)
		cause.Fixes = []model.Fix{{Description: "Check that kube-controller-manager runs and that new namespaces get their default ServiceAccount, then run netsleuth again.",
			Commands: []string{"kubectl -n " + a.Namespace + " get serviceaccounts", "kubectl -n kube-system get pods -l component=kube-controller-manager", "netsleuth check"}}}
		cause = cause.WithKey("")
	case "Unschedulable", "OutOfcpu", "OutOfmemory", "OutOfpods", "Timeout":
		cause.ID = "agent.not-started"
		cause.Title = fmt.Sprintf("Node %s did not run netsleuth's %s agent", a.Node, a.Kind)
		cause.Subject = node
		cause.RootCause = fmt.Sprintf("Node %s did not run the agent pod (%s): it is out of capacity, not ready, or its kubelet is not starting pods.", a.Node, reason)
		cause.Fixes = []model.Fix{{Description: "Look at the pod's events and the node's conditions and capacity.",
			Commands: []string{describe, "kubectl describe node " + a.Node}}}
		cause = cause.WithKey(a.Pod)
	default:
		cause.ID = "agent.not-started"
		cause.Title = fmt.Sprintf("Node %s did not run netsleuth's %s agent", a.Node, a.Kind)
		cause.Subject = node
		cause.RootCause = fmt.Sprintf("The agent pod on node %s failed to start (%s).", a.Node, reason)
		cause.Fixes = []model.Fix{{Description: "Look at the pod's events and logs.", Commands: []string{describe, fmt.Sprintf("kubectl -n %s logs %s", a.Namespace, a.Pod)}}}
		cause = cause.WithKey(a.Pod)
	}
	symptom := model.Finding{
		ID:       probeID + ".agent-not-started",
		Status:   model.StatusError,
		Title:    fmt.Sprintf("The %s agent could not start on node %s, so %s did not test from it", a.Kind, a.Node, probeID),
		Subject:  node,
		Evidence: []string{evidence},
	}
	return []model.Finding{cause, symptom.Symptom(cause)}
}

// ReportLeftovers records a warn finding when runs that are over left
// objects behind (never for a run alive beside this one); only the first
// probe of a run to ask gets them.
func ReportLeftovers(ctx context.Context, env *probes.Env, rec probes.Recorder, probeID string) {
	if env.Agents == nil {
		return
	}
	left, err := env.Agents.Leftovers(ctx, env.Snap())
	if err != nil || len(left) == 0 {
		return
	}
	rec.Finding(model.Finding{
		ID:        probeID + ".leftovers",
		Status:    model.StatusWarn,
		Title:     "Objects from an earlier netsleuth run are still in the cluster",
		RootCause: "An earlier run was killed, or lost the API server, before it could delete its agents: its Lease has expired (runs alive now are not counted).",
		Evidence:  left,
		Fixes: []model.Fix{{Description: "Delete everything netsleuth left behind.",
			Commands: []string{"netsleuth cleanup", "kubectl get ns,pods,services -A -l " + Selector}}},
	})
}

// Evidence renders one result as a line a user can re-run by hand.
func Evidence(from probes.Agent, r ops.Result) string {
	return fmt.Sprintf("%s → %s: %s", from.Ref(), Describe(r), Outcome(r))
}

// Describe names what an op sent and the command that repeats it.
func Describe(r ops.Result) string {
	o := r.Op
	switch o.Kind {
	case ops.TCP:
		return fmt.Sprintf("TCP connect %s:%d (nc -vz -w2 %s %d)", o.Target, o.Port, o.Target, o.Port)
	case ops.UDP:
		return fmt.Sprintf("UDP echo %s:%d ×%d (echo x | nc -u -w2 %s %d)", o.Target, o.Port, r.Sent, o.Target, o.Port)
	case ops.ICMP:
		return fmt.Sprintf("ICMP echo %s ×%d (ping -c %d %s)", o.Target, r.Sent, max(r.Sent, 1), o.Target)
	case ops.HTTP:
		k := ""
		if o.TLS {
			k = "-k "
		}
		u := fmt.Sprintf("%s://%s:%d%s", o.Scheme(), o.Target, o.Port, o.Path)
		return fmt.Sprintf("HTTP GET %s (curl %s-m2 %s)", u, k, u)
	}
	return string(o.Kind)
}

// Outcome is what came back, with loss and latency when there were echoes.
func Outcome(r ops.Result) string {
	s := string(r.Outcome)
	if r.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", r.Status)
	}
	if r.Sent > 1 || (r.Sent == 1 && r.Received == 1) {
		s += fmt.Sprintf(" (%d/%d answered", r.Received, r.Sent)
		if r.Received > 0 {
			s += fmt.Sprintf(", avg %.2f ms", r.AvgRTTMs())
		}
		s += ")"
	}
	if r.Local != "" {
		s += " from " + r.Local
	}
	if r.Error != "" && r.Outcome != ops.OK {
		s += ": " + r.Error
	}
	switch {
	case r.ICMP != nil && !strings.Contains(r.Error, r.ICMP.String()):
		s += " [" + r.ICMP.String() + "]"
	case r.ICMP == nil && (r.Outcome == ops.HostUnreach || r.Outcome == ops.NetUnreach) && r.Op.Kind != ops.ICMP:
		s += " [no ICMP came back: the sending host decided (its routes or neighbours)]"
	}
	return s
}

// LostAmong returns the first of as that is no longer running (an
// *probes.AgentLostError), when the run's agents can tell: traffic to such
// an agent failed because it is gone, not because of the network.
func LostAmong(env *probes.Env, as ...probes.Agent) error {
	l, ok := env.Agents.(probes.Liveness)
	if !ok {
		return nil
	}
	for _, a := range as {
		if err := l.Lost(a); err != nil {
			return err
		}
	}
	return nil
}
