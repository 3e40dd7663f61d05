// Package servicediag is the one diagnosis of a Service's endpoints: a
// selector matching nothing (or only a workload scaled to zero), selected
// pods none of which is ready, named targetPorts no pod declares, and
// EndpointSlices out of step with the pods. The services probe asks it about
// every Service; the dns probe asks it about kube-dns and cites its finding
// as the cause of the DNS failures it sees, so the fact reads the same in both.
package servicediag

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// Finding IDs of this probe; they are a stable contract for scripts.
const (
	IDOK                = "services.ok"
	IDExternalName      = "services.external-name"
	IDNoSelectorEmpty   = "services.no-selector-no-endpoints"
	IDSelectorNoMatch   = "services.selector-no-match"
	IDScaledToZero      = "services.scaled-to-zero"
	IDNoReadyEndpoints  = "services.no-ready-endpoints"
	IDTargetPortUnknown = "services.target-port-unknown"
	IDSliceStale        = "services.endpointslice-stale"
	IDSliceMissing      = "services.endpointslice-missing"
)

// DefaultGrace is how long a pod's readiness must have been stable before a
// disagreeing EndpointSlice counts as out of step.
const DefaultGrace = time.Minute

const (
	refDebugSvc = "https://kubernetes.io/docs/tasks/debug/debug-application/debug-service/"
	refService  = "https://kubernetes.io/docs/concepts/services-networking/service/"
	refSlices   = "https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/"
	refProbes   = "https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/"
	refDebugPod = "https://kubernetes.io/docs/tasks/debug/debug-application/debug-pods/"
	refLabels   = "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/"
)

const controllerManaged = "endpointslice-controller.k8s.io"

// Input is everything Analyze reasons about.
type Input struct {
	Services []corev1.Service
	Pods     []corev1.Pod
	Slices   []discoveryv1.EndpointSlice
	// Workloads are the Deployments and StatefulSets of the Services'
	// namespaces, to tell a selector that matches nothing from one whose
	// workload is scaled to zero.
	Workloads []Workload
	Now       time.Time
	// Grace defaults to DefaultGrace.
	Grace time.Duration
}

// Workload is a Deployment or StatefulSet: its desired replicas and the
// labels of the pods it makes.
type Workload struct {
	Kind, Namespace, Name string
	Replicas              int32
	PodLabels             map[string]string
}

// svcCtx is one service with the objects that belong to it.
type svcCtx struct {
	svc      *corev1.Service
	nsPods   []*corev1.Pod
	selected []*corev1.Pod
	slices   []*discoveryv1.EndpointSlice
	subj     *model.Subject
	name     string // namespace/name
}

// Analyze turns services, pods and EndpointSlices into findings.
func Analyze(in Input) []model.Finding {
	if in.Grace == 0 {
		in.Grace = DefaultGrace
	}
	podsByNS := map[string][]*corev1.Pod{}
	for i := range in.Pods {
		p := &in.Pods[i]
		podsByNS[p.Namespace] = append(podsByNS[p.Namespace], p)
	}
	slicesBySvc := map[string][]*discoveryv1.EndpointSlice{}
	for i := range in.Slices {
		s := &in.Slices[i]
		if n := s.Labels[discoveryv1.LabelServiceName]; n != "" {
			slicesBySvc[s.Namespace+"/"+n] = append(slicesBySvc[s.Namespace+"/"+n], s)
		}
	}
	var out []model.Finding
	for i := range in.Services {
		s := &in.Services[i]
		c := &svcCtx{svc: s, nsPods: podsByNS[s.Namespace], slices: slicesBySvc[s.Namespace+"/"+s.Name],
			subj: &model.Subject{Kind: "Service", Namespace: s.Namespace, Name: s.Name}, name: s.Namespace + "/" + s.Name}
		for _, f := range serviceFindings(c, in) {
			// One key per Service and verdict (per port for port verdicts), so
			// two probes asking about one Service record one finding.
			if f.Key == "" {
				f = f.WithKey("")
			}
			out = append(out, f)
		}
	}
	kube.SortFindings(out)
	return out
}

func serviceFindings(c *svcCtx, in Input) []model.Finding {
	s := c.svc
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		return []model.Finding{{ID: IDExternalName, Status: model.StatusSkip, Subject: c.subj,
			Title:    fmt.Sprintf("Service %s is an ExternalName alias for %s; it has no endpoints to check", c.name, s.Spec.ExternalName),
			Evidence: []string{fmt.Sprintf("Service %s: type ExternalName, externalName=%s", c.name, s.Spec.ExternalName)}}}
	}
	if len(s.Spec.Selector) == 0 {
		return []model.Finding{selectorless(c)}
	}
	sel := labels.SelectorFromSet(s.Spec.Selector)
	for _, p := range c.nsPods {
		if sel.Matches(labels.Set(p.Labels)) {
			c.selected = append(c.selected, p)
		}
	}
	if len(c.selected) == 0 {
		if w, ok := scaledToZero(c, sel, in.Workloads); ok {
			return []model.Finding{w}
		}
		return []model.Finding{noMatch(c, sel)}
	}
	var out []model.Finding
	out = append(out, targetPortFindings(c)...)
	if f, bad := readiness(c); bad {
		out = append(out, f)
	}
	out = append(out, sliceFindings(c, in.Now, in.Grace)...)
	if len(out) == 0 {
		out = append(out, okFinding(c))
	}
	return out
}

func selectorless(c *svcCtx) model.Finding {
	n := 0
	for _, sl := range c.slices {
		n += len(sl.Endpoints)
	}
	ev := []string{fmt.Sprintf("Service %s has no selector; %d EndpointSlice(s) with %d endpoint(s) carry label %s=%s", c.name, len(c.slices), n, discoveryv1.LabelServiceName, c.svc.Name)}
	if n > 0 {
		return model.Finding{ID: IDOK, Status: model.StatusPass, Subject: c.subj, Evidence: ev,
			Title: fmt.Sprintf("Service %s has %d manually managed endpoint(s)", c.name, n)}
	}
	return model.Finding{
		ID: IDNoSelectorEmpty, Status: model.StatusWarn, Subject: c.subj, Evidence: ev,
		Title:     fmt.Sprintf("Service %s has no selector and no endpoints", c.name),
		RootCause: fmt.Sprintf("Service %s has no selector, so Kubernetes creates no endpoints for it, and no EndpointSlice labelled %s=%s exists, so connections to it are refused.", c.name, discoveryv1.LabelServiceName, c.svc.Name),
		Fixes: []model.Fix{
			{Description: "Add a selector matching the backend pods.", Commands: []string{fmt.Sprintf(`kubectl -n %s patch service %s --type merge -p '{"spec":{"selector":{"app":"<backend-label>"}}}'`, c.svc.Namespace, c.svc.Name)}},
			{Description: "Or publish the backends yourself with an EndpointSlice.", Manifest: manualSlice(c.svc)},
		},
		References: []string{refService, refSlices},
	}
}

func manualSlice(s *corev1.Service) string {
	port := int32(80)
	name := ""
	if len(s.Spec.Ports) > 0 {
		port, name = s.Spec.Ports[0].Port, s.Spec.Ports[0].Name
		if s.Spec.Ports[0].TargetPort.IntValue() > 0 {
			port = int32(s.Spec.Ports[0].TargetPort.IntValue())
		}
	}
	return fmt.Sprintf(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s-manual
  namespace: %s
  labels:
    kubernetes.io/service-name: %s
    endpointslice.kubernetes.io/managed-by: cluster-admins
addressType: IPv4
ports:
  - name: %q
    port: %d
    protocol: TCP
endpoints:
  - addresses: ["<backend-ip>"]
`, s.Name, s.Namespace, s.Name, name, port)
}

func noMatch(c *svcCtx, sel labels.Selector) model.Finding {
	s := c.svc
	ev := []string{fmt.Sprintf("Service %s selector %s matches 0 of %d pod(s) in namespace %s", c.name, sel, len(c.nsPods), s.Namespace)}
	near := nearMisses(s.Spec.Selector, c.nsPods, 5)
	for _, n := range near {
		ev = append(ev, "near miss: "+n.String())
	}
	rc := fmt.Sprintf("Service %s selects %s but no pod in namespace %s has those labels, so it has no endpoints and connections to it are refused.", c.name, sel, s.Namespace)
	if len(near) > 0 {
		rc = fmt.Sprintf("Service %s selects %s but no pod in namespace %s has those labels (closest: %s), so it has no endpoints and connections to it are refused.", c.name, sel, s.Namespace, near[0])
	}
	f := model.Finding{
		ID: IDSelectorNoMatch, Status: model.StatusFail, Subject: c.subj, Evidence: ev,
		Title: fmt.Sprintf("Service %s selector %s matches no pod", c.name, sel), RootCause: rc,
		References: []string{refDebugSvc, refLabels},
	}
	if len(near) > 0 {
		patch := map[string]any{}
		for k, v := range s.Spec.Selector {
			patch[k] = v
		}
		if near[0].have == "" {
			patch[near[0].key] = nil
		} else {
			patch[near[0].key] = near[0].have
		}
		b, _ := json.Marshal(map[string]any{"spec": map[string]any{"selector": patch}})
		f.Fixes = append(f.Fixes, model.Fix{
			Description: fmt.Sprintf("If the pods are right, make the selector match them (%s).", near[0]),
			Commands:    []string{fmt.Sprintf("kubectl -n %s patch service %s --type merge -p '%s'", s.Namespace, s.Name, b)},
		})
	}
	f.Fixes = append(f.Fixes, model.Fix{
		Description: "If the selector is right, fix the labels in the workload's pod template, then confirm the selector finds the pods.",
		Commands: []string{
			fmt.Sprintf("kubectl -n %s get pods --show-labels", s.Namespace),
			fmt.Sprintf("kubectl -n %s get pods -l '%s'", s.Namespace, sel),
		},
	})
	return f
}

// scaledToZero finds the workload in the Service's namespace whose pods the
// selector would match and that is scaled to zero replicas.
func scaledToZero(c *svcCtx, sel labels.Selector, ws []Workload) (model.Finding, bool) {
	for _, w := range ws {
		if w.Namespace != c.svc.Namespace || w.Replicas != 0 || !sel.Matches(labels.Set(w.PodLabels)) {
			continue
		}
		kind := strings.ToLower(w.Kind)
		return model.Finding{
			ID: IDScaledToZero, Status: model.StatusFail, Subject: c.subj,
			Title: fmt.Sprintf("Service %s has no endpoints: %s %s/%s is scaled to 0 replicas", c.name, w.Kind, w.Namespace, w.Name),
			RootCause: fmt.Sprintf("%s %s/%s, whose pods Service %s selects (%s), is scaled to 0 replicas, so the Service has no endpoints and every connection to it fails.",
				w.Kind, w.Namespace, w.Name, c.name, sel),
			Evidence: []string{
				fmt.Sprintf("Service %s selector %s matches 0 of %d pod(s) in namespace %s", c.name, sel, len(c.nsPods), c.svc.Namespace),
				fmt.Sprintf("%s %s/%s: spec.replicas 0; its pod template labels %s match the selector", w.Kind, w.Namespace, w.Name, labels.Set(w.PodLabels)),
			},
			Fixes: []model.Fix{{
				Description: fmt.Sprintf("Scale %s %s back up (two replicas keep it serving through one restart; use the count it normally runs with) and wait until it is ready:", w.Kind, w.Name),
				Commands: []string{
					fmt.Sprintf("kubectl -n %s scale %s %s --replicas=2", w.Namespace, kind, w.Name),
					fmt.Sprintf("kubectl -n %s rollout status %s %s --timeout=2m", w.Namespace, kind, w.Name),
				},
			}},
			References: []string{refDebugSvc},
		}, true
	}
	return model.Finding{}, false
}

func okFinding(c *svcCtx) model.Finding {
	ready := 0
	for _, p := range c.selected {
		if r, _ := podReady(p); r {
			ready++
		}
	}
	eps := 0
	for _, sl := range c.slices {
		for _, e := range sl.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				eps++
			}
		}
	}
	return model.Finding{ID: IDOK, Status: model.StatusPass, Subject: c.subj,
		Title: fmt.Sprintf("Service %s: %d/%d selected pods ready, %d ready endpoint(s)", c.name, ready, len(c.selected), eps),
		Evidence: []string{fmt.Sprintf("Service %s selector %s matches %d pod(s), %d Ready; %d EndpointSlice(s) list %d ready endpoint(s)",
			c.name, labels.SelectorFromSet(c.svc.Spec.Selector), len(c.selected), ready, len(c.slices), eps)}}
}

func podNames(ps []*corev1.Pod) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

func joinMax(list []string, n int) string {
	if len(list) > n {
		return strings.Join(list[:n], ", ") + fmt.Sprintf(" and %d more", len(list)-n)
	}
	return strings.Join(list, ", ")
}
