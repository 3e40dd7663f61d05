package servicediag

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netsleuth/netsleuth/model"
)

// targetPortFindings checks every named targetPort against the ports the
// selected (non-terminal) pods declare.
func targetPortFindings(c *svcCtx) []model.Finding {
	var out []model.Finding
	for i, sp := range c.svc.Spec.Ports {
		if sp.TargetPort.Type != intstr.String {
			continue
		}
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		var with, without []string
		declared := map[string]bool{}
		for _, p := range c.selected {
			if terminal(p) {
				continue
			}
			if exposesPort(p, sp.TargetPort.StrVal, proto, declared) {
				with = append(with, p.Name)
			} else {
				without = append(without, p.Name)
			}
		}
		if len(without) == 0 {
			continue
		}
		out = append(out, targetPortFinding(c, i, sp, proto, with, without, declared))
	}
	return out
}

func exposesPort(p *corev1.Pod, name string, proto corev1.Protocol, declared map[string]bool) bool {
	found := false
	for _, ctr := range p.Spec.Containers {
		for _, cp := range ctr.Ports {
			pp := cp.Protocol
			if pp == "" {
				pp = corev1.ProtocolTCP
			}
			if cp.Name == name && pp == proto {
				found = true
			}
			declared[fmt.Sprintf("%s (%d/%s)", orNone(cp.Name), cp.ContainerPort, pp)] = true
		}
	}
	return found
}

func targetPortFinding(c *svcCtx, i int, sp corev1.ServicePort, proto corev1.Protocol, with, without []string, declared map[string]bool) model.Finding {
	var ports []string
	for d := range declared {
		ports = append(ports, d)
	}
	sort.Strings(ports)
	port := fmt.Sprintf("port %d", sp.Port)
	if sp.Name != "" {
		port = fmt.Sprintf("port %s (%d)", sp.Name, sp.Port)
	}
	f := model.Finding{
		ID: IDTargetPortUnknown, Status: model.StatusFail, Subject: c.subj,
		Title: fmt.Sprintf("Service %s %s targets port name %q that no selected pod declares", c.name, port, sp.TargetPort.StrVal),
		Evidence: []string{
			fmt.Sprintf("Service %s %s: targetPort %q/%s", c.name, port, sp.TargetPort.StrVal, proto),
			fmt.Sprintf("pods without a container port named %q/%s: %s", sp.TargetPort.StrVal, proto, joinMax(without, 5)),
			"container ports the selected pods declare: " + orNone(strings.Join(ports, ", ")),
		},
		RootCause: fmt.Sprintf("Service %s %s targets the container port named %q/%s, which none of its %d selected pod(s) declare, so the EndpointSlice controller publishes no endpoint for this port and connections to it fail.",
			c.name, port, sp.TargetPort.StrVal, proto, len(without)),
		References: []string{refService, refDebugSvc},
		Fixes: []model.Fix{
			{
				Description: "Point targetPort at a port the pods declare (by name or number).",
				Commands:    []string{fmt.Sprintf(`kubectl -n %s patch service %s --type json -p '[{"op":"replace","path":"/spec/ports/%d/targetPort","value":"<port-name-or-number>"}]'`, c.svc.Namespace, c.svc.Name, i)},
			},
			{
				Description: fmt.Sprintf("Or name the container port %q in the workload's pod template (containers[].ports[].name).", sp.TargetPort.StrVal),
				Commands:    []string{fmt.Sprintf("kubectl -n %s get pod %s -o jsonpath='{.spec.containers[*].ports}'", c.svc.Namespace, without[0])},
			},
		},
	}
	if len(with) > 0 {
		f.Status = model.StatusWarn
		f.Title = fmt.Sprintf("Service %s %s: %d of %d selected pods lack port name %q", c.name, port, len(without), len(with)+len(without), sp.TargetPort.StrVal)
		f.RootCause = fmt.Sprintf("Service %s %s targets the container port named %q/%s, which %d of its %d selected pods (%s) do not declare, so only %s serve this port: the selector spans two differently built pod templates.",
			c.name, port, sp.TargetPort.StrVal, proto, len(without), len(with)+len(without), joinMax(without, 3), joinMax(with, 3))
	}
	return f.WithKey(port)
}

// readiness reports a service whose selected pods are all not ready.
func readiness(c *svcCtx) (model.Finding, bool) {
	if c.svc.Spec.PublishNotReadyAddresses {
		return model.Finding{}, false
	}
	var reasons []string
	for _, p := range c.selected {
		if r, _ := podReady(p); r {
			return model.Finding{}, false
		}
		reasons = append(reasons, fmt.Sprintf("pod %s: %s", p.Name, NotReadyReason(p)))
	}
	sort.Strings(reasons)
	first := c.selected[0]
	for _, p := range c.selected {
		if p.Name < first.Name {
			first = p
		}
	}
	ev := append([]string{fmt.Sprintf("Service %s selector matches %d pod(s), none Ready", c.name, len(c.selected))}, reasons...)
	if len(ev) > 11 {
		ev = append(ev[:11], fmt.Sprintf("and %d more pods", len(ev)-11))
	}
	return model.Finding{
		ID: IDNoReadyEndpoints, Status: model.StatusFail, Subject: c.subj, Evidence: ev,
		Title: fmt.Sprintf("Service %s has no ready endpoints: 0 of %d selected pods are Ready", c.name, len(c.selected)),
		RootCause: fmt.Sprintf("Service %s selects %d pod(s) but none is Ready (%s), so it has no ready endpoints and connections to it are refused or time out.",
			c.name, len(c.selected), fmt.Sprintf("pod %s: %s", first.Name, NotReadyReason(first))),
		Fixes: []model.Fix{{
			Description: "Find out why the pods are not Ready: scheduling events, container state and logs, and the readiness probe's failures.",
			Commands: []string{
				fmt.Sprintf("kubectl -n %s describe pod %s", first.Namespace, first.Name),
				fmt.Sprintf("kubectl -n %s logs %s --all-containers --previous --tail=50", first.Namespace, first.Name),
				fmt.Sprintf("kubectl -n %s get events --field-selector involvedObject.name=%s", first.Namespace, first.Name),
			},
		}},
		References: []string{refDebugSvc, refDebugPod, refProbes},
	}, true
}

// sliceFindings compares the EndpointSlices' ready flags with the pods'
// Ready conditions, ignoring changes younger than grace.
func sliceFindings(c *svcCtx, now time.Time, grace time.Duration) []model.Finding {
	byName := map[string]*corev1.Pod{}
	for _, p := range c.nsPods {
		byName[p.Name] = p
	}
	listed := map[string]bool{}
	var stale []string
	managed := len(c.slices) == 0
	for _, sl := range c.slices {
		managed = managed || sl.Labels["endpointslice.kubernetes.io/managed-by"] == controllerManaged
		for _, e := range sl.Endpoints {
			if e.TargetRef == nil || e.TargetRef.Kind != "Pod" {
				continue
			}
			listed[e.TargetRef.Name] = true
			if e.Conditions.Terminating != nil && *e.Conditions.Terminating || e.Conditions.Ready != nil && !*e.Conditions.Ready || c.svc.Spec.PublishNotReadyAddresses {
				continue
			}
			p, ok := byName[e.TargetRef.Name]
			if !ok {
				stale = append(stale, fmt.Sprintf("slice %s lists pod %s as ready, but the pod no longer exists", sl.Name, e.TargetRef.Name))
				continue
			}
			if ready, since := podReady(p); !ready && now.Sub(since) > grace {
				stale = append(stale, fmt.Sprintf("slice %s lists pod %s as ready, but the pod is not Ready since %s (%s)", sl.Name, p.Name, since.UTC().Format(time.RFC3339), NotReadyReason(p)))
			}
		}
	}
	var missing []string
	for _, p := range c.selected {
		if ready, since := podReady(p); ready && managed && !listed[p.Name] && p.Status.PodIP != "" && now.Sub(since) > grace {
			missing = append(missing, fmt.Sprintf("pod %s (%s) Ready since %s is in no EndpointSlice of the Service", p.Name, p.Status.PodIP, since.UTC().Format(time.RFC3339)))
		}
	}
	var out []model.Finding
	if len(stale) > 0 {
		out = append(out, sliceFinding(c, IDSliceStale, stale, grace,
			fmt.Sprintf("the EndpointSlices of Service %s list %d endpoint(s) as ready whose pods are not Ready (%s), so kube-proxy keeps sending traffic to them: the EndpointSlice controller in kube-controller-manager is not reconciling this Service.", c.name, len(stale), stale[0])))
	}
	if len(missing) > 0 {
		out = append(out, sliceFinding(c, IDSliceMissing, missing, grace,
			fmt.Sprintf("%d Ready pod(s) selected by Service %s are missing from its EndpointSlices (%s), so they receive no Service traffic: the EndpointSlice controller in kube-controller-manager is not reconciling this Service.", len(missing), c.name, missing[0])))
	}
	return out
}

func sliceFinding(c *svcCtx, id string, lines []string, grace time.Duration, rc string) model.Finding {
	sort.Strings(lines)
	title := fmt.Sprintf("Service %s: EndpointSlices list not-Ready pods as ready", c.name)
	if id == IDSliceMissing {
		title = fmt.Sprintf("Service %s: Ready pods missing from its EndpointSlices", c.name)
	}
	ev := append([]string{fmt.Sprintf("disagreements older than %s between EndpointSlices (label %s=%s) and pod Ready conditions:", grace, "kubernetes.io/service-name", c.svc.Name)}, lines...)
	return model.Finding{
		ID: id, Status: model.StatusFail, Subject: c.subj, Title: title, RootCause: rc, Evidence: ev,
		Fixes: []model.Fix{{
			Description: "Check that kube-controller-manager runs and its EndpointSlice controller is not failing or throttled; a custom controller owning the slices (managed-by label) must be fixed instead.",
			Commands: []string{
				fmt.Sprintf("kubectl -n %s get endpointslices -l kubernetes.io/service-name=%s -o yaml", c.svc.Namespace, c.svc.Name),
				"kubectl -n kube-system get pods -l component=kube-controller-manager",
				"kubectl -n kube-system logs -l component=kube-controller-manager --tail=200 | grep -i endpointslice",
			},
		}},
		References: []string{refSlices, refDebugSvc},
	}
}
