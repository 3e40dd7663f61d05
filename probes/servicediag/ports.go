package servicediag

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/netsleuth/netsleuth/model"
)

// Endpoint is one ready endpoint of a Service port: its address, the port
// it serves there (the targetPort as the EndpointSlice resolved it), and its
// node and pod when the slice names them.
type Endpoint struct {
	IP   string
	Port int
	Node string // "" when the EndpointSlice does not say
	Pod  string // namespace/name, "" when the EndpointSlice does not say
}

// ReadyEndpoints returns up to max ready endpoints of the Service port named
// portName ("" for an unnamed port), one per address, from its
// EndpointSlices.
func ReadyEndpoints(eps []discoveryv1.EndpointSlice, portName string, max int) []Endpoint {
	var out []Endpoint
	seen := map[string]bool{}
	for _, sl := range eps {
		port := 0
		for _, p := range sl.Ports {
			if p.Port != nil && (p.Name == nil && portName == "" || p.Name != nil && *p.Name == portName) {
				port = int(*p.Port)
			}
		}
		if port == 0 {
			continue
		}
		for _, e := range sl.Endpoints {
			if (e.Conditions.Ready != nil && !*e.Conditions.Ready) || len(e.Addresses) == 0 || seen[e.Addresses[0]] || len(out) == max {
				continue
			}
			seen[e.Addresses[0]] = true
			ep := Endpoint{IP: e.Addresses[0], Port: port}
			if e.NodeName != nil {
				ep.Node = *e.NodeName
			}
			if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
				ep.Pod = e.TargetRef.Namespace + "/" + e.TargetRef.Name
			}
			out = append(out, ep)
		}
	}
	return out
}

// RBACEndpoints is what ListEndpoints reads.
var RBACEndpoints = []model.Permission{{Group: "discovery.k8s.io", Resource: "endpointslices", Verbs: []string{"list"}}}

// ListEndpoints reads the EndpointSlices of Service ns/name and returns up
// to max ready endpoints of its port named portName.
func ListEndpoints(ctx context.Context, c kubernetes.Interface, ns, name, portName string, max int) ([]Endpoint, error) {
	sl, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return nil, fmt.Errorf("listing the EndpointSlices of %s/%s: %w", ns, name, err)
	}
	return ReadyEndpoints(sl.Items, portName, max), nil
}

// Protocol is p, TCP when unset.
func Protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// PortFor is the port of s that serves port over proto ("tcp", "udp").
func PortFor(s *corev1.Service, port int, proto string) (corev1.ServicePort, bool) {
	for _, sp := range s.Spec.Ports {
		if int(sp.Port) == port && strings.EqualFold(string(Protocol(sp.Protocol)), proto) {
			return sp, true
		}
	}
	return corev1.ServicePort{}, false
}

// TargetPort renders a Service port's targetPort (its port when unset).
func TargetPort(sp corev1.ServicePort) string {
	if sp.TargetPort.IntValue() == 0 && sp.TargetPort.StrVal == "" {
		return strconv.Itoa(int(sp.Port))
	}
	return sp.TargetPort.String()
}

// PortList renders the ports of s as "80/tcp→8080, 53/udp→dns".
func PortList(s *corev1.Service) []string {
	var out []string
	for _, sp := range s.Spec.Ports {
		out = append(out, fmt.Sprintf("%d/%s→%s", sp.Port, strings.ToLower(string(Protocol(sp.Protocol))), TargetPort(sp)))
	}
	return out
}
