package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The upstream Kubernetes NetworkPolicy e2e model (test/e2e/network/netpol):
// namespaces x, y, z, each with pods a, b, c labelled pod=<name>, serving
// ports 80 and 81 over TCP and UDP on ports named serve-<port>-<proto>.
func upstreamModel() ([]Pod, []Namespace) {
	var pods []Pod
	var nss []Namespace
	for i, ns := range []string{"x", "y", "z"} {
		nss = append(nss, Namespace{Name: ns, Labels: map[string]string{namespaceNameLabel: ns}})
		for j, name := range []string{"a", "b", "c"} {
			p := Pod{Namespace: ns, Name: name, Labels: map[string]string{"pod": name},
				IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 1, byte(i), byte(10 + j)})}}
			for _, port := range []int32{80, 81} {
				for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
					p.Ports = append(p.Ports, ContainerPort{Name: fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto))), Port: port, Protocol: proto})
				}
			}
			pods = append(pods, p)
		}
	}
	return pods, nss
}

// reach is an expected truth table, like upstream's Reachability: all pairs
// start allowed and expectations override them. "" in a peer is a wildcard.
type reach map[[2]string]bool

type expect struct {
	fromNS, fromPod, toNS, toPod string
	allowed                      bool
}

func (r reach) apply(pods []Pod, ex []expect) {
	for _, s := range pods {
		for _, d := range pods {
			r[[2]string{s.Key(), d.Key()}] = true
		}
	}
	m := func(want, got string) bool { return want == "" || want == got }
	for _, x := range ex {
		for _, s := range pods {
			for _, d := range pods {
				if m(x.fromNS, s.Namespace) && m(x.fromPod, s.Name) && m(x.toNS, d.Namespace) && m(x.toPod, d.Name) {
					r[[2]string{s.Key(), d.Key()}] = x.allowed
				}
			}
		}
	}
}

func np(ns, name string, sel map[string]string, types []networkingv1.PolicyType, in []networkingv1.NetworkPolicyIngressRule, out []networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: sel}, PolicyTypes: types, Ingress: in, Egress: out}}
}

var (
	tIn   = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	tOut  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	tBoth = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	podA  = map[string]string{"pod": "a"}
	tcp80 = Port{80, corev1.ProtocolTCP}
	tcp81 = Port{81, corev1.ProtocolTCP}
	udp80 = Port{80, corev1.ProtocolUDP}
	nsIs  = func(ns string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{namespaceNameLabel: ns}}
	}
	podIs = func(p string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"pod": p}}
	}
	nsNotX = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: namespaceNameLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"x"}}}}
)

func pport(proto corev1.Protocol, port intstr.IntOrString) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port}
}

type upstreamCase struct {
	name     string
	policies []*networkingv1.NetworkPolicy
	port     Port
	expect   []expect
}

func upstreamCases() []upstreamCase {
	return []upstreamCase{
		{"default-deny-ingress", []*networkingv1.NetworkPolicy{np("x", "deny-ingress", nil, tIn, nil, nil)}, tcp80,
			[]expect{{"", "", "x", "", false}}},
		{"default-deny-all", []*networkingv1.NetworkPolicy{np("x", "deny-all", nil, tBoth, nil, nil)}, tcp80,
			[]expect{{"", "", "x", "", false}, {"x", "", "", "", false}}},
		{"allow from pods within server namespace by PodSelector", []*networkingv1.NetworkPolicy{np("x", "x-a-allows-x-b", podA, tIn,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: podIs("b")}}}}, nil)}, tcp80,
			[]expect{{"", "", "x", "a", false}, {"x", "b", "x", "a", true}}},
		{"allow only from a different namespace by NamespaceSelector", []*networkingv1.NetworkPolicy{np("x", "allow-client-a-via-ns-selector", podA, tIn,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsIs("y")}}}}, nil)}, tcp80,
			[]expect{{"x", "", "x", "a", false}, {"z", "", "x", "a", false}}},
		{"PodSelector and NamespaceSelector", []*networkingv1.NetworkPolicy{np("x", "allow-ns-y-podselector-and-nsselector", podA, tIn,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsNotX, PodSelector: podIs("b")}}}}, nil)}, tcp80,
			[]expect{{"", "", "x", "a", false}, {"y", "b", "x", "a", true}, {"z", "b", "x", "a", true}}},
		{"PodSelector or NamespaceSelector", []*networkingv1.NetworkPolicy{np("x", "allow-ns-y-match-selector", podA, tIn,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsNotX}, {PodSelector: podIs("b")}}}}, nil)}, tcp80,
			[]expect{{"x", "a", "x", "a", false}, {"x", "c", "x", "a", false}}},
		{"Ports: namespace y on 81 only, checked on 81", []*networkingv1.NetworkPolicy{np("x", "allow-81", podA, tIn,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsIs("y")}}, Ports: []networkingv1.NetworkPolicyPort{pport(corev1.ProtocolTCP, intstr.FromInt32(81))}}}, nil)}, tcp81,
			[]expect{{"x", "", "x", "a", false}, {"y", "", "x", "a", true}, {"z", "", "x", "a", false}}},
		{"Ports: namespace y on 81 only, checked on 80", []*networkingv1.NetworkPolicy{np("x", "allow-81", podA, tIn,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsIs("y")}}, Ports: []networkingv1.NetworkPolicyPort{pport(corev1.ProtocolTCP, intstr.FromInt32(81))}}}, nil)}, tcp80,
			[]expect{{"", "", "x", "a", false}}},
		{"ingress on one named port, checked on 80", []*networkingv1.NetworkPolicy{np("x", "allow-all", nil, tIn,
			[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptrTo(intstr.FromString("serve-81-tcp"))}}}}, nil)}, tcp80,
			[]expect{{"", "", "x", "", false}}},
		{"ingress on one named port, checked on 81", []*networkingv1.NetworkPolicy{np("x", "allow-all", nil, tIn,
			[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptrTo(intstr.FromString("serve-81-tcp"))}}}}, nil)}, tcp81, nil},
		{"egress on one named port, checked on 81", []*networkingv1.NetworkPolicy{np("x", "allow-egress", nil, tOut, nil,
			[]networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptrTo(intstr.FromString("serve-80-tcp"))}}}})}, tcp81,
			[]expect{{"x", "", "", "", false}}},
		{"egress to CIDR with except", []*networkingv1.NetworkPolicy{np("x", "allow-client-a-via-cidr-egress-rule", podA, tOut, nil,
			[]networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.11/32"}}}}}})}, tcp80,
			[]expect{{"x", "a", "x", "b", false}}},
		{"ingress by protocol, checked on UDP", []*networkingv1.NetworkPolicy{np("x", "allow-ingress-by-proto", podA, tIn,
			[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{pport(corev1.ProtocolTCP, intstr.FromInt32(80))}}}, nil)}, udp80,
			[]expect{{"", "", "x", "a", false}}},
		{"SCTP is not TCP", []*networkingv1.NetworkPolicy{np("x", "deny-ingress", nil, tIn, nil, nil), np("x", "allow-only-sctp-ingress-on-port-81", podA, tIn,
			[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{pport(corev1.ProtocolSCTP, intstr.FromInt32(81))}}}, nil)}, tcp81,
			[]expect{{"", "", "x", "", false}}},
		{"egress allow-all takes precedence", []*networkingv1.NetworkPolicy{
			np("x", "allow-egress-port-80", nil, tOut, nil, []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptrTo(intstr.FromInt32(80))}}}}),
			np("x", "allow-egress", nil, tOut, nil, []networkingv1.NetworkPolicyEgressRule{{}})}, tcp81, nil},
		{"ingress and egress controlled independently", []*networkingv1.NetworkPolicy{
			np("x", "allow-egress-for-target", podA, tOut, nil, []networkingv1.NetworkPolicyEgressRule{{}}),
			np("x", "deny-ingress-via-label-selector", podA, tIn, nil, nil)}, tcp80,
			[]expect{{"", "", "x", "a", false}}},
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestUpstreamTruthTables reproduces upstream e2e cases; like upstream
// (ignoreLoopback), a pod's traffic to itself is not compared.
func TestUpstreamTruthTables(t *testing.T) {
	pods, nss := upstreamModel()
	for _, tc := range upstreamCases() {
		t.Run(tc.name, func(t *testing.T) {
			want := reach{}
			want.apply(pods, tc.expect)
			e := Compile(pods, nss, tc.policies)
			m := e.Matrix([]Port{tc.port}, nil)
			for s := range pods {
				for d := range pods {
					if s == d {
						continue
					}
					w := want[[2]string{pods[s].Key(), pods[d].Key()}]
					if got := m.Allowed(0, s, d); got != w {
						t.Errorf("%s -> %s on %s: got %v, want %v\n%s", pods[s].Key(), pods[d].Key(), tc.port, got, w, m.TruthTable(0))
					}
					if got := e.Check(Endpoint{Pod: s}, Endpoint{Pod: d}, tc.port).Allowed(); got != w {
						t.Errorf("Check %s -> %s: got %v, want %v", pods[s].Key(), pods[d].Key(), got, w)
					}
				}
			}
		})
	}
}
