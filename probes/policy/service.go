package policy

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/servicediag"
)

// maxServiceEndpoints bounds the endpoints a Service question asks about.
const maxServiceEndpoints = 5

// rbacService is what a Service destination reads: the Service named, the
// Services whose ClusterIP an address may be, and their EndpointSlices.
var rbacService = model.MergePermissions(kube.RBACServices, servicediag.RBACEndpoints,
	[]model.Permission{{Resource: "services", Verbs: []string{"get"}}})

// ServiceRef reads "namespace/svc/name" (or namespace/service/name).
func ServiceRef(target string) (ns, name string, ok bool) {
	parts := strings.Split(target, "/")
	if len(parts) != 3 || (parts[1] != "svc" && parts[1] != "service") || parts[0] == "" || parts[2] == "" || strings.ContainsAny(target, " *") {
		return "", "", false
	}
	return parts[0], parts[2], true
}

// serviceQuestions asks the question of each ready endpoint when the
// destination is a Service (--to ns/svc/name:port, or an IP that is a
// Service's ClusterIP): NetworkPolicies apply after kube-proxy's
// translation, to the endpoint's pod on the port the Service port maps to.
// It returns nil when the destination is no Service.
func (e *Engine) serviceQuestions(ctx context.Context, env *probes.Env, from, to string) ([]asked, error) {
	target, portStr, ok := strings.Cut(to, ":")
	if !ok || from == "" {
		return nil, nil // question says what is missing
	}
	svc, err := findService(ctx, env, target)
	if svc == nil || err != nil {
		return nil, err
	}
	port, err := ParsePort(portStr)
	if err != nil {
		return nil, err
	}
	src, err := e.resolve(from, true)
	if err != nil {
		return nil, err
	}
	ref := svc.Namespace + "/" + svc.Name
	sp, ok := servicediag.PortFor(svc, int(port.Port), string(port.Protocol))
	if !ok {
		return nil, fmt.Errorf("Service %s has no port %s (its ports: %s)", ref, port, strings.Join(servicediag.PortList(svc), ", "))
	}
	eps, err := servicediag.ListEndpoints(ctx, env.Kube, svc.Namespace, svc.Name, sp.Name, maxServiceEndpoints)
	if err != nil {
		return nil, err
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("Service %s has no ready endpoint for port %s, so there is no pod to ask about (netsleuth check --probe services -n %s)", ref, port, svc.Namespace)
	}
	var out []asked
	for _, ep := range eps {
		a, err := netip.ParseAddr(ep.IP)
		if err != nil {
			continue
		}
		dst, p := e.IPEndpoint(a), Port{Port: int32(ep.Port), Protocol: port.Protocol}
		q := question{src: src, dst: dst, port: p, verdict: e.Check(src, dst, p)}
		f := e.Finding(src, dst, q.verdict)
		f.Evidence = append([]string{fmt.Sprintf("Service %s port %s → targetPort %s: endpoint %s:%d%s; NetworkPolicies apply to the endpoint, after kube-proxy's translation",
			ref, port, servicediag.TargetPort(sp), ep.IP, ep.Port, podOf(ep))}, f.Evidence...)
		out = append(out, asked{q: q, f: f})
	}
	return out, nil
}

func podOf(ep servicediag.Endpoint) string {
	if ep.Pod == "" {
		return ""
	}
	return " (pod " + ep.Pod + ")"
}

// findService is the Service target names: ns/svc/name, or the Service an
// address is the ClusterIP of; nil when target is neither.
func findService(ctx context.Context, env *probes.Env, target string) (*corev1.Service, error) {
	if ns, name, ok := ServiceRef(target); ok {
		svc, err := env.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("Service %s/%s not found (kubectl -n %s get services)", ns, name, ns)
		}
		if err != nil {
			return nil, fmt.Errorf("reading Service %s/%s: %w", ns, name, err)
		}
		return svc, nil
	}
	a, err := netip.ParseAddr(target)
	if err != nil {
		return nil, nil
	}
	svcs, err := env.Snap().Services(ctx, "")
	if err != nil {
		return nil, nil // unreadable: the address is asked about as an address
	}
	for i := range svcs {
		if slices.Contains(svcs[i].Spec.ClusterIPs, a.String()) || svcs[i].Spec.ClusterIP == a.String() {
			return &svcs[i], nil
		}
	}
	return nil, nil
}
