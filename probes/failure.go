package probes

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/rbac"
)

// Finding IDs the runner uses for probes that could not finish.
const (
	FindingForbidden = "runner.forbidden"
	FindingTimeout   = "runner.timeout"
	FindingStopped   = "runner.stopped"
	FindingPanic     = "runner.panic"
	FindingError     = "runner.error"
	FindingCleanup   = "runner.cleanup-failed"
	// FindingAgentLost: an agent that had started stopped answering mid-run.
	FindingAgentLost = "runner.agent-lost"
	// FindingAPIUnreachable: the API server stopped answering mid-run.
	FindingAPIUnreachable = "runner.api-unreachable"
)

// errorFinding explains why a probe returned err while in stage; cause is
// context.Cause of the probe's context.
func errorFinding(info model.ProbeInfo, stage string, err, cause error) model.Finding {
	var pe *panicError
	var pt *ProbeTimeoutError
	var lost *AgentLostError
	switch {
	case errors.As(err, &pe):
		return panicFinding(info, stage, pe)
	case apierrors.IsForbidden(err):
		return forbiddenFinding(info, stage, err)
	case errors.As(cause, &pt):
		return timeoutFinding(info, stage, pt, err)
	case cause != nil:
		return stoppedFinding(info, stage, cause)
	case APIUnreachable(err):
		return apiUnreachableFinding(info, stage, err)
	case errors.As(err, &lost):
		return agentLostFinding(info, stage, lost)
	}
	return model.Finding{
		Probe:     info.ID,
		ID:        FindingError,
		Status:    model.StatusError,
		Title:     fmt.Sprintf("%s could not finish", title(info)),
		RootCause: fmt.Sprintf("The probe failed while %s: %v.", stage, err),
		Evidence:  []string{err.Error()},
		Fixes: []model.Fix{{
			Description: fmt.Sprintf("Fix the error above (it happened while %s), then run the probe again.", stage),
			Commands:    []string{"netsleuth check --probe " + info.ID},
		}},
	}
}

func title(info model.ProbeInfo) string {
	if info.Title != "" {
		return info.Title
	}
	return "Probe " + info.ID
}

func timeoutFinding(info model.ProbeInfo, stage string, pt *ProbeTimeoutError, err error) model.Finding {
	return model.Finding{
		Probe:     info.ID,
		ID:        FindingTimeout,
		Status:    model.StatusError,
		Title:     fmt.Sprintf("%s timed out", title(info)),
		RootCause: fmt.Sprintf("The probe timed out while %s: it did not finish within --probe-timeout=%s.", stage, pt.Timeout),
		Evidence:  []string{"last stage: " + stage, err.Error()},
		Fixes: []model.Fix{
			{
				Description: "Give the probe more time if the cluster is slow or large.",
				Commands:    []string{fmt.Sprintf("netsleuth check --probe %s --probe-timeout %s", info.ID, pt.Timeout*2)},
			},
			{Description: fmt.Sprintf("Find out why the cluster is slow while %s: check pending pods, image pulls and API server latency.", stage)},
		},
	}
}

// stoppedFinding is for a probe cut short by the end of the whole run.
func stoppedFinding(info model.ProbeInfo, stage string, cause error) model.Finding {
	fix := model.Fix{Description: "Run the probe again and let it finish.", Commands: []string{"netsleuth check --probe " + info.ID}}
	if errors.Is(cause, context.DeadlineExceeded) {
		fix = model.Fix{
			Description: "Raise the whole-run limit, or run fewer probes at once.",
			Commands:    []string{"netsleuth check --timeout 15m", "netsleuth check --probe " + info.ID},
		}
	}
	return model.Finding{
		Probe:     info.ID,
		ID:        FindingStopped,
		Status:    model.StatusError,
		Title:     fmt.Sprintf("%s was stopped", title(info)),
		RootCause: fmt.Sprintf("The run ended while %s: %v.", stage, cause),
		Evidence:  []string{"last stage: " + stage},
		Fixes:     []model.Fix{fix},
	}
}

// apiUnreachableFinding is for a probe whose API server stopped answering.
func apiUnreachableFinding(info model.ProbeInfo, stage string, err error) model.Finding {
	return model.Finding{
		Probe:     info.ID,
		ID:        FindingAPIUnreachable,
		Status:    model.StatusError,
		Title:     fmt.Sprintf("The API server stopped answering, so %s could not finish", info.ID),
		RootCause: fmt.Sprintf("The Kubernetes API server did not answer while %s: it was restarting, overloaded, or the network to it broke. Nothing this probe tests is known to be broken; it could not test.", stage),
		Evidence:  []string{err.Error()},
		Fixes: []model.Fix{{
			Description: "Check that the API server answers again (and why it went away: its logs, its restarts), then run the probe again.",
			Commands:    []string{"kubectl get --raw /readyz", "netsleuth check --probe " + info.ID},
		}},
	}
}

// agentLostFinding is for a probe whose agent stopped answering mid-run.
func agentLostFinding(info model.ProbeInfo, stage string, e *AgentLostError) model.Finding {
	describe := fmt.Sprintf("kubectl -n %s describe pod %s", e.Namespace, e.Pod)
	fix := model.Fix{Description: "Find out what happened to the agent pod, then run the probe again.",
		Commands: []string{describe, "netsleuth check --probe " + info.ID}}
	switch e.Reason {
	case LostNodeDown, LostKubelet:
		fix = model.Fix{Description: fmt.Sprintf("Bring node %s's kubelet back (it runs and answers on port 10250, the node is Ready), then run the probe again.", e.Node),
			Commands: []string{"kubectl get node " + e.Node, "kubectl describe node " + e.Node, "netsleuth check --probe " + info.ID}}
	case LostPodDeleted:
		fix.Description = "Let the run's agents live until it ends (a controller, a policy engine or a person deleted the pod: the pod's events say which), then run the probe again."
		fix.Commands = []string{fmt.Sprintf("kubectl -n %s get events --field-selector involvedObject.name=%s", e.Namespace, e.Pod), "netsleuth check --probe " + info.ID}
	case LostStreamCut, LostExecStopped:
		fix.Description = fmt.Sprintf("Run the probe again; if exec streams keep breaking, look at the kubelet and container runtime on node %s and at what sits between the API server and the kubelet.", e.Node)
	}
	return model.Finding{
		Probe:     info.ID,
		ID:        FindingAgentLost,
		Status:    model.StatusError,
		Title:     fmt.Sprintf("The %s agent on node %s was lost mid-run, so %s could not finish", e.Kind, e.Node, info.ID),
		Subject:   &model.Subject{Kind: "Node", Name: e.Node},
		RootCause: fmt.Sprintf("While %s, the exec into agent pod %s/%s failed: %s. Nothing this probe tests is known to be broken; it could not test from there.", stage, e.Namespace, e.Pod, e.Detail),
		Evidence:  []string{"reason: " + e.Reason, fmt.Sprint(e.Err)},
		Fixes:     []model.Fix{fix},
	}
}

func panicFinding(info model.ProbeInfo, stage string, pe *panicError) model.Finding {
	ev := []string{pe.Error()}
	for _, l := range strings.Split(strings.TrimSpace(string(pe.stack)), "\n") {
		if len(ev) > 12 {
			break
		}
		ev = append(ev, strings.TrimSpace(l))
	}
	return model.Finding{
		Probe:     info.ID,
		ID:        FindingPanic,
		Status:    model.StatusError,
		Title:     fmt.Sprintf("%s crashed", title(info)),
		RootCause: fmt.Sprintf("The probe panicked while %s: %v. This is a bug in netsleuth, not in the cluster.", stage, pe.value),
		Evidence:  ev,
		Fixes: []model.Fix{{
			Description: "Report the bug with the evidence above at https://github.com/netsleuth/netsleuth/issues and skip this probe meanwhile.",
		}},
	}
}

func cleanupFinding(probe, runID string, err error) model.Finding {
	return model.Finding{
		Probe:     probe,
		ID:        FindingCleanup,
		Status:    model.StatusWarn,
		Title:     "Cleanup failed: objects may be left in the cluster",
		RootCause: fmt.Sprintf("Removing what the probe created failed: %v.", err),
		Evidence:  []string{"run ID: " + runID, err.Error()},
		Fixes: []model.Fix{{
			Description: "Find and delete the leftovers by hand.",
			Commands:    []string{"kubectl get pods,daemonsets,networkpolicies,services -A | grep netsleuth"},
		}},
	}
}

// forbiddenRE matches the API server's authorization message.
var forbiddenRE = regexp.MustCompile(`User "([^"]*)" cannot (\S+) resource "([^"]*)"(?: in API group "([^"]*)")?(?: in the namespace "([^"]*)")?`)

// denied is the permission an API server refused.
type denied struct {
	User, Verb, Group, Resource, Subresource, Namespace string
}

// parseForbidden extracts the denied permission from a Forbidden error.
func parseForbidden(err error) (denied, bool) {
	var d denied
	if m := forbiddenRE.FindStringSubmatch(err.Error()); m != nil {
		d = denied{User: m[1], Verb: m[2], Group: m[4], Namespace: m[5]}
		d.Resource, d.Subresource, _ = strings.Cut(m[3], "/")
		return d, true
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Details != nil {
		det := st.Status().Details
		d.Group, d.Resource = det.Group, det.Kind
	}
	return d, false
}

func forbiddenFinding(info model.ProbeInfo, stage string, err error) model.Finding {
	d, ok := parseForbidden(err)
	perms := info.RBAC
	what, role := "a permission it needs", rbac.ActiveRole
	if ok {
		role = rbac.RoleFor(d.Verb)
		what = fmt.Sprintf("permission to %s %s", d.Verb, d.qualified())
		if d.Namespace != "" {
			what += fmt.Sprintf(" in namespace %s", d.Namespace)
		} else {
			what += " at cluster scope"
		}
		perms = append([]model.Permission{{Group: d.Group, Resource: d.Resource, Subresource: d.Subresource, Verbs: []string{d.Verb}}}, perms...)
	}
	cmds := []string{}
	if ok {
		cmds = append(cmds, d.canI())
	}
	cmds = append(cmds, applyCommand(role), bindCommand(role, d.User))
	var subj *model.Subject
	if d.Resource != "" {
		subj = &model.Subject{Kind: d.qualified(), Namespace: d.Namespace}
	}
	return model.Finding{
		Probe:     info.ID,
		ID:        FindingForbidden,
		Status:    model.StatusError,
		Title:     fmt.Sprintf("%s lacks RBAC permission", title(info)),
		Subject:   subj,
		RootCause: fmt.Sprintf("The API server denied %s while %s, so the probe could not finish; bind the ClusterRole %s, which grants it.", what, stage, role),
		Evidence:  []string{err.Error()},
		Fixes: []model.Fix{{
			Description: fmt.Sprintf("Bind netsleuth's ClusterRole %s to your user (the manifest is this probe's own permissions alone, for a narrower grant), or run as a user who has them.", role),
			Commands:    cmds,
			Manifest:    clusterRole(info.ID, perms),
		}},
	}
}

func (d denied) qualified() string {
	r := d.Resource
	if d.Group != "" {
		r += "." + d.Group
	}
	if d.Subresource != "" {
		r += "/" + d.Subresource
	}
	return r
}

// canI is the kubectl command that checks the denied permission.
func (d denied) canI() string {
	res := d.Resource
	if d.Group != "" {
		res += "." + d.Group
	}
	cmd := fmt.Sprintf("kubectl auth can-i %s %s", d.Verb, res)
	if d.Subresource != "" {
		cmd += " --subresource=" + d.Subresource
	}
	if d.Namespace != "" {
		return cmd + " -n " + d.Namespace
	}
	return cmd + " --all-namespaces"
}

// applyCommand creates role from netsleuth's own declarations.
func applyCommand(role string) string {
	if role == rbac.ActiveRole {
		return "netsleuth rbac --active | kubectl apply -f -"
	}
	return "netsleuth rbac | kubectl apply -f -"
}

// bindCommand binds role to the user the API server named.
func bindCommand(role, user string) string {
	if user == "" {
		user = "<your-user>"
	}
	if sa, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		return fmt.Sprintf("kubectl create clusterrolebinding %s-%s --clusterrole=%s --serviceaccount=%s", role, bindingSuffix(sa), role, sa)
	}
	return fmt.Sprintf("kubectl create clusterrolebinding %s-%s --clusterrole=%s --user=%s", role, bindingSuffix(user), role, user)
}

// bindingSuffix makes a user or namespace:serviceaccount fit an object name.
func bindingSuffix(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-.")
}

// clusterRole renders a ClusterRole granting perms, merging duplicate rules.
func clusterRole(probe string, perms []model.Permission) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: netsleuth-%s\nrules:\n", probe)
	seen := map[string]bool{}
	for _, p := range perms {
		res := p.Resource
		if p.Subresource != "" {
			res += "/" + p.Subresource
		}
		key := p.Group + "|" + res + "|" + strings.Join(p.Verbs, ",")
		if res == "" || seen[key] {
			continue
		}
		seen[key] = true
		fmt.Fprintf(&b, "- apiGroups: [%q]\n  resources: [%q]\n  verbs: [%s]\n", p.Group, res, quoteList(p.Verbs))
	}
	return b.String()
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
