package policy

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// fuzzPods is the upstream e2e model plus cluster DNS and a hostNetwork pod,
// so DNS lint and the hostNetwork exemptions are reached.
func fuzzPods() ([]Pod, []Namespace) {
	pods, nss := upstreamModel()
	nss = append(nss, Namespace{Name: "kube-system", Labels: map[string]string{namespaceNameLabel: "kube-system"}})
	pods = append(pods,
		Pod{Namespace: "kube-system", Name: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"}, IPs: []netip.Addr{netip.MustParseAddr("10.1.9.2")},
			Ports: []ContainerPort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}, {Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP}}},
		Pod{Namespace: "x", Name: "node-exporter", Labels: map[string]string{"pod": "a"}, IPs: []netip.Addr{netip.MustParseAddr("10.250.0.2")}, HostNetwork: true})
	return pods, nss
}

// FuzzCompile builds NetworkPolicies from arbitrary JSON (a list of
// policies, or one) and compiles them against a fixed set of pods. Compile,
// Check, Explain, Finding, Matrix and Lint must not panic; the matrix and
// Check agree on every pair of pods and port; and a question from an
// address outside the cluster is answered too.
func FuzzCompile(f *testing.F) {
	for _, tc := range upstreamCases() {
		b, err := json.Marshal(tc.policies)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"metadata":{"namespace":"x","name":"bad"},"spec":{"podSelector":{"matchExpressions":[{"key":"pod","operator":"Bogus"}]},"ingress":[{"from":[{"ipBlock":{"cidr":"10.1.0.0/99","except":["x"]}}],"ports":[{"port":"serve-80-tcp","protocol":"UDP"},{"port":80,"endPort":70}]}]}}`))
	f.Add([]byte(`[{"metadata":{"namespace":"kube-system","name":"dns-only"},"spec":{"podSelector":{},"policyTypes":["Egress"],"egress":[{"to":[{"namespaceSelector":{}}],"ports":[{"port":53,"protocol":"UDP"}]}]}}]`))
	f.Add([]byte(`[{"metadata":{"name":"no-namespace"},"spec":{"podSelector":{},"policyTypes":["Ingress","Egress","Sideways"]}},null]`))
	ports := []Port{{80, corev1.ProtocolTCP}, {81, corev1.ProtocolUDP}, {53, corev1.ProtocolUDP}, {70, corev1.ProtocolSCTP}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var nps []*networkingv1.NetworkPolicy
		if json.Unmarshal(data, &nps) != nil {
			var one networkingv1.NetworkPolicy
			if json.Unmarshal(data, &one) != nil {
				return
			}
			nps = []*networkingv1.NetworkPolicy{&one}
		}
		kept := nps[:0]
		for _, np := range nps {
			if np != nil { // the API never lists a null policy
				kept = append(kept, np)
			}
		}
		pods, nss := fuzzPods()
		e := Compile(pods, nss, kept)
		m := e.Matrix(ports, nil)
		outside := e.IPEndpoint(netip.MustParseAddr("192.0.2.7"))
		for q, port := range ports {
			for s := range pods {
				for d := range pods {
					v := e.Check(Endpoint{Pod: s}, Endpoint{Pod: d}, port)
					if got := m.Allowed(q, s, d); got != v.Allowed() {
						t.Fatalf("%s -> %s on %s: matrix says %v, Check says %v\n%s", pods[s].Key(), pods[d].Key(), port, got, v.Allowed(), m.TruthTable(q))
					}
					if s == 0 || d == 0 {
						_ = e.Explain(v)
						_ = e.Finding(Endpoint{Pod: s}, Endpoint{Pod: d}, v)
					}
				}
				v := e.Check(outside, Endpoint{Pod: s}, port)
				_ = e.Explain(v)
				_ = e.Finding(outside, Endpoint{Pod: s}, v)
			}
			_ = m.TruthTable(q)
		}
		for _, f := range e.Lint("") {
			if f.ID == "" || f.Title == "" {
				t.Fatalf("lint finding without ID or title: %+v", f)
			}
		}
		_ = e.PoliciesSelectingKeys([]string{"pod", namespaceNameLabel})
		if _, err := e.Question("x/a", "y/b:80/tcp"); err != nil {
			t.Fatalf("question: %v", err)
		}
	})
}

// FuzzParsePort feeds arbitrary text to the --to port reader: a port it
// accepts is 1-65535 with a known protocol, and its rendering reads back
// as the same port.
func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"80", "80/tcp", "udp/53", "53/UDP", "sctp/9", "0", "65536", "80/icmp", "/", "-1/tcp", "+80", "080/Tcp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePort(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "port ") {
				t.Fatalf("error %q does not name the port", err)
			}
			return
		}
		if p.Port < 1 || p.Port > 65535 {
			t.Fatalf("%q: port %d", s, p.Port)
		}
		switch p.Protocol {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			t.Fatalf("%q: protocol %q", s, p.Protocol)
		}
		if again, err := ParsePort(p.String()); err != nil || again != p {
			t.Fatalf("%q renders as %q, which reads as %+v (%v)", s, p.String(), again, err)
		}
	})
}
