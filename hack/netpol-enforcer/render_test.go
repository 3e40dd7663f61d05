package main

import (
	"math/rand"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const testPrefix = "NSL-NP"

// fixture: node1 is the local node.
func fixturePods() []Pod {
	return []Pod{
		{Namespace: "default", Name: "web", Labels: map[string]string{"app": "web"}, IP: "10.244.1.10", Node: "node1",
			Ports: []ContainerPort{{Name: "http", Port: 8080, Protocol: "TCP"}}},
		{Namespace: "default", Name: "local-client", Labels: map[string]string{"app": "client"}, IP: "10.244.1.11", Node: "node1"},
		{Namespace: "default", Name: "client", Labels: map[string]string{"app": "client"}, IP: "10.244.2.20", Node: "node2"},
		{Namespace: "default", Name: "remote-web", Labels: map[string]string{"app": "web"}, IP: "10.244.2.10", Node: "node2",
			Ports: []ContainerPort{{Name: "http", Port: 8081, Protocol: "TCP"}}},
		{Namespace: "default", Name: "hostnet", Labels: map[string]string{"app": "web"}, IP: "10.250.0.1", Node: "node1", HostNetwork: true,
			Ports: []ContainerPort{{Name: "http", Port: 10250, Protocol: "TCP"}}},
		{Namespace: "prod", Name: "api", Labels: map[string]string{"app": "api"}, IP: "10.244.2.30", Node: "node2",
			Ports: []ContainerPort{{Name: "http", Port: 8443, Protocol: "TCP"}}},
		{Namespace: "kube-system", Name: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"}, IP: "10.244.2.53", Node: "node2",
			Ports: []ContainerPort{{Name: "dns", Port: 53, Protocol: "UDP"}, {Name: "dns-tcp", Port: 53, Protocol: "TCP"}}},
	}
}

func fixtureNamespaces() []Namespace {
	return []Namespace{
		{Name: "default"},
		{Name: "prod", Labels: map[string]string{"team": "a"}},
		{Name: "kube-system"},
	}
}

func fixtureInput(pols ...networkingv1.NetworkPolicy) Input {
	return Input{Node: "node1", Prefix: testPrefix, Pods: fixturePods(), Namespaces: fixtureNamespaces(), Policies: pols}
}

func pol(ns, name string, spec networkingv1.NetworkPolicySpec) networkingv1.NetworkPolicy {
	return networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func port(proto corev1.Protocol, p intstr.IntOrString) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

func portRange(proto corev1.Protocol, from, to int32) networkingv1.NetworkPolicyPort {
	p := port(proto, intstr.FromInt32(from))
	p.EndPort = &to
	return p
}

func ingressFrom(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) []networkingv1.NetworkPolicyIngressRule {
	return []networkingv1.NetworkPolicyIngressRule{{From: peers, Ports: ports}}
}

var placeholder = regexp.MustCompile(`\{(I|E):([^}]+)\}`)

// expand replaces {I:ns/name} and {E:ns/name} with chain names and {FWD}.
func expand(s string) string {
	s = strings.ReplaceAll(s, "{FWD}", fwdChain(testPrefix))
	s = strings.ReplaceAll(s, "{A_I}", "-j MARK --set-xmark 0x200000/0x200000")
	s = strings.ReplaceAll(s, "{A_E}", "-j MARK --set-xmark 0x100000/0x100000")
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		g := placeholder.FindStringSubmatch(m)
		return chainName(testPrefix, g[1], g[2], 10)
	})
}

func chainRules(rs Ruleset, chain string) []string {
	var out []string
	for _, r := range rs.Rules {
		if strings.HasPrefix(r, "-A "+chain+" ") {
			out = append(out, r)
		}
	}
	return out
}

// subChainOf finds the ipBlock sub-chain jumped to from chain for cidr.
func subChainOf(t *testing.T, rs Ruleset, chain, flag, cidr string) string {
	t.Helper()
	pfx := "-A " + chain + " " + flag + " " + cidr + " -j "
	for _, r := range rs.Rules {
		if strings.HasPrefix(r, pfx) {
			return strings.TrimPrefix(r, pfx)
		}
	}
	t.Fatalf("no ipBlock jump %q in:\n%s", pfx, strings.Join(rs.Rules, "\n"))
	return ""
}

func TestRender(t *testing.T) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	denyAll := networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}}
	cases := []struct {
		name     string
		pols     []networkingv1.NetworkPolicy
		want     []string
		notWant  []string // substrings that must not appear in any rule
		ing, egr int      // isolated pod counts
		check    func(t *testing.T, rs Ruleset)
	}{
		{
			name: "no policies: dispatch chain only",
			want: []string{
				"-A {FWD} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
				"-A {FWD} -j MARK --set-xmark 0x0/0x300000",
			},
			notWant: []string{"DROP"},
		},
		{
			name: "default deny ingress isolates local pods only",
			pols: []networkingv1.NetworkPolicy{pol("default", "deny", denyAll)},
			want: []string{
				"-A {FWD} -d 10.244.1.10/32 -j {I:default/web}",
				`-A {FWD} -d 10.244.1.10/32 -m mark ! --mark 0x200000/0x200000 -m comment --comment "default/web ingress" -j DROP`,
				"-A {FWD} -d 10.244.1.11/32 -j {I:default/local-client}",
			},
			notWant: []string{"10.244.2.10", "10.250.0.1", "-A {I:default/web}", "0x100000/0x100000"},
			ing:     2,
		},
		{
			name: "allow from podSelector uses pods on every node as peers",
			pols: []networkingv1.NetworkPolicy{pol("default", "from-client", networkingv1.NetworkPolicySpec{
				PodSelector: *sel("app", "web"),
				Ingress:     ingressFrom([]networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "client")}}),
			})},
			want: []string{
				"-A {I:default/web} -s 10.244.1.11/32 {A_I}",
				"-A {I:default/web} -s 10.244.2.20/32 {A_I}",
			},
			notWant: []string{"10.244.2.30", "{I:default/local-client}", "{I:default/remote-web}"},
			ing:     1,
		},
		{
			name: "namespaceSelector selects pods of labelled namespaces",
			pols: []networkingv1.NetworkPolicy{pol("default", "from-team-a", networkingv1.NetworkPolicySpec{
				PodSelector: *sel("app", "web"),
				Ingress:     ingressFrom([]networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("team", "a")}}),
			})},
			want:    []string{"-A {I:default/web} -s 10.244.2.30/32 {A_I}"},
			notWant: []string{"10.244.2.20", "10.244.1.11", "10.244.2.53"},
			ing:     1,
		},
		{
			name: "namespaceSelector and podSelector combined in one peer",
			pols: []networkingv1.NetworkPolicy{pol("default", "from-dns", networkingv1.NetworkPolicySpec{
				PodSelector: *sel("app", "web"),
				Ingress: ingressFrom([]networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: sel("kubernetes.io/metadata.name", "kube-system"),
					PodSelector:       sel("k8s-app", "kube-dns"),
				}, {
					NamespaceSelector: sel("team", "a"),
					PodSelector:       sel("app", "nope"),
				}}),
			})},
			want:    []string{"-A {I:default/web} -s 10.244.2.53/32 {A_I}"},
			notWant: []string{"10.244.2.30", "10.244.2.20"},
			ing:     1,
		},
		{
			name: "ipBlock with except via sub-chain",
			pols: []networkingv1.NetworkPolicy{pol("default", "from-net", networkingv1.NetworkPolicySpec{
				PodSelector: *sel("app", "web"),
				Ingress: ingressFrom([]networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{
					CIDR: "192.168.2.7/24", Except: []string{"192.168.2.128/25"},
				}}}, port(tcp, intstr.FromInt32(80))),
			})},
			ing: 1,
			check: func(t *testing.T, rs Ruleset) {
				sub := subChainOf(t, rs, expand("{I:default/web}"), "-s", "192.168.2.0/24")
				got := chainRules(rs, sub)
				want := []string{
					"-A " + sub + " -s 192.168.2.128/25 -j RETURN",
					"-A " + sub + " -p tcp -m tcp --dport 80 " + expand("{A_I}"),
				}
				if !slices.Equal(got, want) {
					t.Fatalf("sub-chain rules\n got %q\nwant %q", got, want)
				}
				if !slices.Contains(rs.Chains, sub) || len(sub) > 28 {
					t.Fatalf("sub-chain %q not declared or too long", sub)
				}
			},
		},
		{
			name: "named port resolves on the target pod, protocol must match",
			pols: []networkingv1.NetworkPolicy{pol("default", "http", networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{},
				Ingress: ingressFrom(nil, port(tcp, intstr.FromString("http")),
					port(udp, intstr.FromString("http"))),
			})},
			want:    []string{"-A {I:default/web} -p tcp -m tcp --dport 8080 {A_I}"},
			notWant: []string{"-p udp", "-A {I:default/web} {A_I}", "-A {I:default/local-client} -"},
			ing:     2,
		},
		{
			name: "endPort ranges, SCTP and protocol-only ports",
			pols: []networkingv1.NetworkPolicy{pol("default", "ranges", networkingv1.NetworkPolicySpec{
				PodSelector: *sel("app", "web"),
				Ingress: ingressFrom([]networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "client")}},
					portRange(tcp, 8000, 9000), port(corev1.ProtocolSCTP, intstr.FromInt32(5000)),
					networkingv1.NetworkPolicyPort{Protocol: &udp}),
			})},
			want: []string{
				"-A {I:default/web} -s 10.244.2.20/32 -p tcp -m tcp --dport 8000:9000 {A_I}",
				"-A {I:default/web} -s 10.244.2.20/32 -p sctp -m sctp --dport 5000 {A_I}",
				"-A {I:default/web} -s 10.244.2.20/32 -p udp {A_I}",
			},
			ing: 1,
		},
		{
			name: "egress with DNS allow; named egress port resolves on destination",
			pols: []networkingv1.NetworkPolicy{pol("default", "client-egress", networkingv1.NetworkPolicySpec{
				PodSelector: *sel("app", "client"),
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{{
					To: []networkingv1.NetworkPolicyPeer{{
						NamespaceSelector: sel("kubernetes.io/metadata.name", "kube-system"),
						PodSelector:       sel("k8s-app", "kube-dns"),
					}},
					Ports: []networkingv1.NetworkPolicyPort{port(udp, intstr.FromInt32(53)), port(tcp, intstr.FromInt32(53))},
				}, {
					To:    []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "web")}},
					Ports: []networkingv1.NetworkPolicyPort{port(tcp, intstr.FromString("http"))},
				}},
			})},
			want: []string{
				"-A {FWD} -s 10.244.1.11/32 -j {E:default/local-client}",
				`-A {FWD} -s 10.244.1.11/32 -m mark ! --mark 0x100000/0x100000 -m comment --comment "default/local-client egress" -j DROP`,
				"-A {E:default/local-client} -d 10.244.2.53/32 -p udp -m udp --dport 53 {A_E}",
				"-A {E:default/local-client} -d 10.244.2.53/32 -p tcp -m tcp --dport 53 {A_E}",
				"-A {E:default/local-client} -d 10.244.1.10/32 -p tcp -m tcp --dport 8080 {A_E}",
				"-A {E:default/local-client} -d 10.244.2.10/32 -p tcp -m tcp --dport 8081 {A_E}",
			},
			notWant: []string{"{I:", "10.250.0.1", "10.244.2.20/32 -j"},
			egr:     1,
		},
		{
			name: "egress named port without peers resolves on every pod; ipBlock limits it",
			pols: []networkingv1.NetworkPolicy{pol("default", "named-any", networkingv1.NetworkPolicySpec{
				PodSelector: *sel("app", "client"),
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{
					{Ports: []networkingv1.NetworkPolicyPort{port(udp, intstr.FromString("dns"))}},
					{
						To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.244.1.0/24"}}},
						Ports: []networkingv1.NetworkPolicyPort{port(tcp, intstr.FromString("http")), port(tcp, intstr.FromInt32(443))},
					},
				},
			})},
			want: []string{"-A {E:default/local-client} -d 10.244.2.53/32 -p udp -m udp --dport 53 {A_E}"},
			egr:  1,
			check: func(t *testing.T, rs Ruleset) {
				sub := subChainOf(t, rs, expand("{E:default/local-client}"), "-d", "10.244.1.0/24")
				got := chainRules(rs, sub)
				want := []string{
					"-A " + sub + " -p tcp -m tcp --dport 443 " + expand("{A_E}"),
					"-A " + sub + " -d 10.244.1.10/32 -p tcp -m tcp --dport 8080 " + expand("{A_E}"),
				}
				if !slices.Equal(got, want) {
					t.Fatalf("sub-chain rules\n got %q\nwant %q", got, want)
				}
			},
		},
		{
			name: "policyTypes inferred: egress rules imply Egress, Ingress always",
			pols: []networkingv1.NetworkPolicy{pol("default", "infer", networkingv1.NetworkPolicySpec{
				PodSelector: *sel("app", "web"),
				Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
			})},
			want: []string{
				"-A {FWD} -d 10.244.1.10/32 -j {I:default/web}",
				"-A {FWD} -s 10.244.1.10/32 -j {E:default/web}",
				"-A {E:default/web} {A_E}",
			},
			notWant: []string{"-A {I:default/web} "},
			ing:     1, egr: 1,
		},
		{
			name: "explicit Ingress-only policyTypes ignores egress rules",
			pols: []networkingv1.NetworkPolicy{pol("default", "ing-only", networkingv1.NetworkPolicySpec{
				PodSelector: *sel("app", "web"),
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
				Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
			})},
			want:    []string{"-A {I:default/web} {A_I}"},
			notWant: []string{"{E:"},
			ing:     1,
		},
		{
			name: "hostNetwork pods are neither policed nor peers",
			pols: []networkingv1.NetworkPolicy{pol("default", "web-from-web", networkingv1.NetworkPolicySpec{
				PodSelector: *sel("app", "web"),
				Ingress:     ingressFrom([]networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "web")}}),
			})},
			want:    []string{"-A {I:default/web} -s 10.244.2.10/32 {A_I}", "-A {I:default/web} -s 10.244.1.10/32 {A_I}"},
			notWant: []string{"10.250.0.1", "{I:default/hostnet}"},
			ing:     1,
		},
		{
			name:    "policies in another namespace do not select",
			pols:    []networkingv1.NetworkPolicy{pol("prod", "deny", denyAll)},
			notWant: []string{"DROP"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := Render(fixtureInput(tc.pols...))
			all := strings.Join(rs.Rules, "\n") + "\n"
			for _, w := range tc.want {
				if !slices.Contains(rs.Rules, expand(w)) {
					t.Errorf("missing rule %q in:\n%s", expand(w), all)
				}
			}
			for _, nw := range tc.notWant {
				if strings.Contains(all, expand(nw)) {
					t.Errorf("unexpected %q in:\n%s", expand(nw), all)
				}
			}
			if rs.Stats.IngressIsolated != tc.ing || rs.Stats.EgressIsolated != tc.egr {
				t.Errorf("isolated ingress/egress = %d/%d, want %d/%d",
					rs.Stats.IngressIsolated, rs.Stats.EgressIsolated, tc.ing, tc.egr)
			}
			if last := rs.Rules[len(rs.Rules)-1]; last != expand("-A {FWD} -j MARK --set-xmark 0x0/0x300000") {
				t.Errorf("last rule %q must clear the marks", last)
			}
			for _, c := range rs.Chains {
				if len(c) > 28 {
					t.Errorf("chain %q longer than 28", c)
				}
			}
			if tc.check != nil {
				tc.check(t, rs)
			}
		})
	}
}

func allFeaturePolicies() []networkingv1.NetworkPolicy {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	return []networkingv1.NetworkPolicy{
		pol("default", "deny", networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}}),
		pol("default", "web", networkingv1.NetworkPolicySpec{
			PodSelector: *sel("app", "web"),
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: sel("app", "client")},
					{NamespaceSelector: sel("team", "a"), PodSelector: sel("app", "api")},
					{IPBlock: &networkingv1.IPBlock{CIDR: "192.168.2.0/24", Except: []string{"192.168.2.128/25"}}},
				},
				Ports: []networkingv1.NetworkPolicyPort{port(tcp, intstr.FromString("http")), portRange(tcp, 9000, 9100),
					port(corev1.ProtocolSCTP, intstr.FromInt32(7000)), {Protocol: &udp}},
			}},
		}),
		pol("default", "dns", networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("kubernetes.io/metadata.name", "kube-system")}},
				Ports: []networkingv1.NetworkPolicyPort{port(udp, intstr.FromString("dns")), port(tcp, intstr.FromInt32(53))},
			}, {
				To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}}}},
			}},
		}),
	}
}

func TestRenderDeterministic(t *testing.T) {
	in := fixtureInput(allFeaturePolicies()...)
	want := RestoreText(Render(in), nil)
	rng := rand.New(rand.NewSource(1))
	for range 20 {
		rng.Shuffle(len(in.Pods), func(i, j int) { in.Pods[i], in.Pods[j] = in.Pods[j], in.Pods[i] })
		rng.Shuffle(len(in.Policies), func(i, j int) { in.Policies[i], in.Policies[j] = in.Policies[j], in.Policies[i] })
		if got := RestoreText(Render(in), nil); got != want {
			t.Fatalf("render depends on input order:\n%s\n---\n%s", got, want)
		}
	}
}

func TestRestoreText(t *testing.T) {
	rs := Ruleset{Chains: []string{"NSL-NP-FWD", "NSL-NP-I-AAAA"}, Rules: []string{"-A NSL-NP-FWD -j NSL-NP-I-AAAA"}}
	got := RestoreText(rs, []string{"NSL-NP-FWD", "NSL-NP-E-BBBB"})
	want := "*filter\n:NSL-NP-FWD - [0:0]\n:NSL-NP-I-AAAA - [0:0]\n:NSL-NP-E-BBBB - [0:0]\n" +
		"-A NSL-NP-FWD -j NSL-NP-I-AAAA\n-X NSL-NP-E-BBBB\nCOMMIT\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, b := range []string{"FORWARD", "INPUT", "OUTPUT"} {
		if strings.Contains(got, b) {
			t.Fatalf("restore text names built-in chain %s", b)
		}
	}
}

func TestParseHelpers(t *testing.T) {
	save := "-P FORWARD ACCEPT\n-N KUBE-FORWARD\n-N NSL-NP-FWD\n-N NSL-NP-I-0A1B\n-N NSL-NP-X-1\n-N NSL-NP-LONG-FWD\n" +
		"-A FORWARD -j KUBE-FORWARD\n-A FORWARD -m comment --comment netsleuth-lab-netpol -j NSL-NP-FWD\n" +
		"-A FORWARD -j NSL-NP-FWD\n"
	if got := parseOwnChains(save, "NSL-NP"); !slices.Equal(got, []string{"NSL-NP-FWD", "NSL-NP-I-0A1B"}) {
		t.Errorf("parseOwnChains = %q", got)
	}
	if got := jumpPositions(save, "NSL-NP-FWD"); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("jumpPositions = %v", got)
	}
	if err := validatePrefix("NSL-NP-TOO-LONG-X"); err == nil {
		t.Error("long prefix accepted")
	}
}

func TestPodFromKube(t *testing.T) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "p"},
		Spec: corev1.PodSpec{NodeName: "node1", Containers: []corev1.Container{{
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "fd00::1"}, {IP: "10.244.1.5"}}},
	}
	got, ok := podFromKube(p)
	if !ok || got.IP != "10.244.1.5" || got.Ports[0].Protocol != "TCP" || got.Node != "node1" {
		t.Fatalf("podFromKube = %+v, %v", got, ok)
	}
	p.Status.Phase = corev1.PodSucceeded
	if _, ok := podFromKube(p); ok {
		t.Fatal("terminal pod kept")
	}
}
