package servicediag

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestReadyEndpointsAndPorts(t *testing.T) {
	pod := func(n string) *corev1.ObjectReference {
		return &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: n}
	}
	sl := []discoveryv1.EndpointSlice{
		{Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.0.0.1"}, NodeName: ptr.To("n1"), TargetRef: pod("web-a")},
				{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
				{Addresses: []string{"10.0.0.3"}, TargetRef: pod("web-c")},
			}},
		{Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}, {Addresses: []string{"10.0.0.4"}}}},
		{Ports: []discoveryv1.EndpointPort{{Name: ptr.To("metrics"), Port: ptr.To[int32](9090)}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.9"}}}},
	}
	got := ReadyEndpoints(sl, "http", 10)
	if len(got) != 3 || got[0] != (Endpoint{IP: "10.0.0.1", Port: 8080, Node: "n1", Pod: "shop/web-a"}) || got[1].Pod != "shop/web-c" || got[2].IP != "10.0.0.4" {
		t.Errorf("ready endpoints of http, one per address: %+v", got)
	}
	if got := ReadyEndpoints(sl, "http", 1); len(got) != 1 {
		t.Errorf("max 1: %+v", got)
	}
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
	}}}
	if sp, ok := PortFor(svc, 80, "tcp"); !ok || sp.Name != "http" || TargetPort(sp) != "http" {
		t.Errorf("port 80/tcp: %+v %v", sp, ok)
	}
	if _, ok := PortFor(svc, 53, "tcp"); ok {
		t.Error("53/tcp is not served, only 53/udp")
	}
	if s := strings.Join(PortList(svc), ", "); s != "80/tcp→http, 53/udp→53" {
		t.Error(s)
	}
}
