package podtoservice

import (
	"strings"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/nodenet"
	"github.com/netsleuth/netsleuth/probes/servicediag"
)

const natHealthy = `*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-NODEPORTS -p tcp -m comment --comment "ns1/web:http" -m tcp --dport 30080 -j KUBE-EXT-AAA
-A KUBE-SERVICES -d 10.96.5.5/32 -p tcp -m comment --comment "ns1/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-AAA
-A KUBE-SEP-B1 -p tcp -m comment --comment "ns1/web:http" -m tcp -j DNAT --to-destination 10.244.0.5:8766
-A KUBE-SEP-B2 -p tcp -m comment --comment "ns1/web:http" -m tcp -j DNAT --to-destination 10.244.1.5:8766
COMMIT
`

const natNoProxy = `*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
`

const natStale = `*nat
:KUBE-SERVICES - [0:0]
-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-X
COMMIT
`

func res(target string, port int, o ops.Outcome) ops.Result {
	return ops.Result{Op: ops.Op{Kind: ops.HTTP, Target: target, Port: port, Path: "/"}, Outcome: o, Sent: 1}
}

type world struct {
	clusterFrom map[string]ops.Outcome // source node → ClusterIP outcome
	directFrom  map[string]ops.Outcome // source node → outcome to every backend
	nodePortOn  map[string]ops.Outcome // target node → NodePort outcome from every source
}

func (w world) input(facts map[string]agent.NodeFacts, proxy Proxy) Input {
	svc := Service{Namespace: "ns1", Name: "web", PortName: "http", ClusterIP: "10.96.5.5", Port: 80, NodePort: 30080, Temporary: true,
		Backends: []Backend{{IP: "10.244.0.5", Port: 8766, Node: "n1"}, {IP: "10.244.1.5", Port: 8766, Node: "n2"}}}
	nodes := []Node{{"n1", "10.250.0.1"}, {"n2", "10.250.0.2"}}
	in := Input{Service: svc, Nodes: nodes, Facts: facts, Proxy: proxy}
	for _, n := range nodes {
		a := probes.Agent{Kind: probes.AgentPod, Node: n.Name, Namespace: "netsleuth-r", Pod: "netsleuth-pod-" + n.Name}
		s := Source{Agent: a, ClusterIP: res(svc.ClusterIP, 80, w.clusterFrom[n.Name]), NodePorts: map[string]ops.Result{}}
		for _, b := range svc.Backends {
			s.Direct = append(s.Direct, res(b.IP, b.Port, w.directFrom[n.Name]))
		}
		for _, t := range nodes {
			s.NodePorts[t.Name] = res(t.IP, svc.NodePort, w.nodePortOn[t.Name])
		}
		in.Sources = append(in.Sources, s)
	}
	return in
}

func TestAnalyze(t *testing.T) {
	ok, to, rst := ops.OK, ops.Timeout, ops.Refused
	healthy := world{clusterFrom: map[string]ops.Outcome{"n1": ok, "n2": ok}, directFrom: map[string]ops.Outcome{"n1": ok, "n2": ok},
		nodePortOn: map[string]ops.Outcome{"n1": ok, "n2": ok}}
	proxyDown := world{clusterFrom: map[string]ops.Outcome{"n1": to, "n2": ok}, directFrom: healthy.directFrom,
		nodePortOn: map[string]ops.Outcome{"n1": rst, "n2": ok}}
	nodePortOnly := world{clusterFrom: healthy.clusterFrom, directFrom: healthy.directFrom, nodePortOn: map[string]ops.Outcome{"n1": to, "n2": ok}}
	podNet := world{clusterFrom: map[string]ops.Outcome{"n1": to, "n2": ok}, directFrom: map[string]ops.Outcome{"n1": to, "n2": ok},
		nodePortOn: healthy.nodePortOn}
	f := func(ipt string, bnf string) map[string]agent.NodeFacts {
		s := map[string]string{}
		if bnf != "" {
			s[agent.SysBridgeNF] = bnf
		}
		return map[string]agent.NodeFacts{"n1": {Node: "n1", IPTables: ipt, Sysctls: s}}
	}
	daemonSet := Proxy{Mode: "iptables", Source: "ConfigMap", Pods: map[string]string{"n1": "kube-proxy-abc"}}
	process := Proxy{Source: "none", Pods: map[string]string{}}
	cases := []struct {
		name  string
		w     world
		facts map[string]agent.NodeFacts
		proxy Proxy
		id    string
		cause string // substring of the n1 finding's root cause
		fix   string
	}{
		{"healthy", healthy, nil, process, IDOK, "", ""},
		{"kube-proxy stopped, rules flushed (process)", proxyDown, f(natNoProxy, "1"), process, nodenet.IDKubeProxyNoRules,
			"Node n1 has no KUBE-SERVICES chain", "systemctl restart kube-proxy"},
		{"kube-proxy stopped (DaemonSet)", proxyDown, f(natNoProxy, "1"), daemonSet, nodenet.IDKubeProxyNoRules,
			"kube-proxy is not running there", "kubectl -n kube-system delete pod kube-proxy-abc"},
		{"kube-proxy stale", proxyDown, f(natStale, "1"), daemonSet, nodenet.IDKubeProxyStale,
			"has not programmed Service ns1/web (no KUBE-SVC chain for it)", "kubectl -n kube-system rollout restart ds/kube-proxy"},
		{"rules present, br_netfilter missing", world{clusterFrom: proxyDown.clusterFrom, directFrom: healthy.directFrom, nodePortOn: healthy.nodePortOn},
			f(natHealthy, ""), daemonSet, nodenet.IDBridgeNF, "br_netfilter is not loaded", "modprobe br_netfilter"},
		{"rules present, dropped after DNAT", world{clusterFrom: proxyDown.clusterFrom, directFrom: healthy.directFrom, nodePortOn: healthy.nodePortOn},
			f(natHealthy, "1"), daemonSet, IDServiceDropped, "has the rules for ns1/web", "conntrack -L -d 10.96.5.5"},
		{"nodeport firewalled", nodePortOnly, f(natHealthy, "1"), daemonSet, IDNodePortBlocked,
			"NodePort 30080 on node n1 fails from every node", "firewall-cmd --permanent --add-port=30000-32767/tcp"},
		{"ipvs mode, no facts", proxyDown, nil, Proxy{Mode: "ipvs", Source: "ConfigMap"}, IDKubeProxy,
			"kube-proxy (ipvs mode) on node n1", "rollout restart ds/kube-proxy"},
		{"no facts", proxyDown, nil, daemonSet, IDKubeProxy, "could not be read", "kubectl -n kube-system logs kube-proxy-abc"},
		{"pod network broken", podNet, nil, daemonSet, IDPodNetwork, "pod-to-pod traffic from n1 fails", "netsleuth check --probe pod-to-pod"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Analyze(tc.w.input(tc.facts, tc.proxy))
			var cause *model.Finding
			if len(got) == 3 && got[0].Key != "" && got[1].CausedBy == got[0].Key {
				cause, got = &got[0], got[1:] // a shared node fact, cited as the cause of n1's finding
			}
			if len(got) != 2 {
				t.Fatalf("want one finding per node, got %d: %+v", len(got), got)
			}
			n1, n2 := got[0], got[1]
			if n2.ID != IDOK || n2.Status != model.StatusPass || n2.Subject.Name != "n2" {
				t.Errorf("n2: %s %s", n2.ID, n2.Status)
			}
			if cause != nil {
				n1.ID = cause.ID // the shared fact is what the case names
			}
			if n1.ID != tc.id || n1.Subject.Name != "n1" {
				t.Fatalf("n1: got %s (%s), want %s", n1.ID, n1.RootCause, tc.id)
			}
			if !strings.Contains(n1.RootCause, tc.cause) {
				t.Errorf("root cause %q lacks %q", n1.RootCause, tc.cause)
			}
			if tc.fix != "" && !fixHas(n1, tc.fix) {
				t.Errorf("no fix mentions %q: %+v", tc.fix, n1.Fixes)
			}
			if tc.id != IDOK && (n1.Status != model.StatusFail || len(n1.Evidence) < 4) {
				t.Errorf("status %s, evidence %v", n1.Status, n1.Evidence)
			}
		})
	}
}

func TestAnalyzeNoEndpointsAndEvidence(t *testing.T) {
	in := world{}.input(nil, Proxy{})
	in.Service.Backends = nil
	got := Analyze(in)
	if len(got) != 1 || got[0].ID != IDNoEndpoints || !fixHas(got[0], "netsleuth check --probe services -n ns1") {
		t.Fatalf("got %+v", got)
	}
	ok := ops.OK
	in = world{clusterFrom: map[string]ops.Outcome{"n1": ok, "n2": ok}, directFrom: map[string]ops.Outcome{"n1": ok, "n2": ok},
		nodePortOn: map[string]ops.Outcome{"n1": ok, "n2": ok}}.input(nil, Proxy{})
	in.Sources[0].ClusterIP.Body = agent.Banner + " pod=netsleuth-pod-n2 node=n2\n"
	ev := strings.Join(Analyze(in)[0].Evidence, "\n")
	for _, want := range []string{"HTTP GET http://10.96.5.5:80/ (curl", "via the ClusterIP): answered by pod=netsleuth-pod-n2 node=n2",
		"direct to endpoint 10.244.1.5:8766 on n2", "via node n1's NodePort"} {
		if !strings.Contains(ev, want) {
			t.Errorf("evidence lacks %q:\n%s", want, ev)
		}
	}
}

func TestInspectRules(t *testing.T) {
	s := Service{Namespace: "ns1", Name: "web", PortName: "http", NodePort: 30080}
	r := nodenet.KubeProxyRules(natHealthy, s.ref())
	if !r.Services || r.SvcChain != "KUBE-SVC-AAA" || !r.NodePort || strings.Join(r.DNAT, ",") != "10.244.0.5:8766,10.244.1.5:8766" {
		t.Errorf("%+v", r)
	}
	if r := nodenet.KubeProxyRules(natNoProxy, s.ref()); r.Services || r.SvcChain != "" {
		t.Errorf("%+v", r)
	}
}

func TestBackendsAndName(t *testing.T) {
	sl := []discoveryv1.EndpointSlice{{
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8766)}, {Name: ptr.To("other"), Port: ptr.To[int32](9)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.5"}, NodeName: ptr.To("n1")},
			{Addresses: []string{"10.244.1.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		}}}
	bs := servicediag.ReadyEndpoints(sl, "http", MaxBackends)
	if len(bs) != 1 || bs[0] != (Backend{IP: "10.244.0.5", Port: 8766, Node: "n1"}) {
		t.Errorf("%+v", bs)
	}
	if TempName("AbC") != "netsleuth-svc-abc" {
		t.Error(TempName("AbC"))
	}
}

func fixHas(f model.Finding, s string) bool {
	for _, x := range f.Fixes {
		if strings.Contains(x.Description, s) || strings.Contains(strings.Join(x.Commands, "\n"), s) {
			return true
		}
	}
	return false
}

// TestPlanRetry: a ClusterIP failing from n1's pod is retried from that
// pod and captured at its veth, at n1's route to the endpoint on n2 and at
// n2's route back; a NodePort failing on n1 from every node is retried
// from n2's pod and captured at its veth and at n1's address. Nothing is
// planned for a node whose Service path works; the capture's evidence goes
// on the node's finding.
func TestPlanRetry(t *testing.T) {
	ok, to := ops.OK, ops.Timeout
	w := world{clusterFrom: map[string]ops.Outcome{"n1": to, "n2": ok}, directFrom: map[string]ops.Outcome{"n1": ok, "n2": ok},
		nodePortOn: map[string]ops.Outcome{"n1": ok, "n2": ok}}
	in := w.input(nil, Proxy{Mode: "iptables"})
	in.Sources[0].Agent.IP, in.Sources[1].Agent.IP = "10.244.0.9", "10.244.1.9"
	vs := Judge(in)
	r, planned := planRetry(in, vs[0])
	if !planned || r.Probe != ID || r.op.Target != "10.96.5.5" || r.op.Port != 80 || r.At[0].Pod == nil || r.At[0].Pod.Node != "n1" {
		t.Fatalf("ClusterIP retry %+v %v", r, planned)
	}
	var where []string
	for _, p := range r.At {
		where = append(where, p.Node+":"+p.Label+":"+p.RouteTo+p.Carrying)
	}
	want := "n1:pod veth of the source: n1:route to endpoint 10.244.1.5:10.244.1.5 n2:route to the source:10.244.0.9"
	if got := strings.Join(where, " "); got != want {
		t.Errorf("points %s", got)
	}
	if got := r.Filter.String(); !strings.Contains(got, "ip host 10.96.5.5 or ip host 10.244.0.5 or ip host 10.244.1.5") ||
		!strings.Contains(got, "tcp port 80") || !strings.Contains(got, "tcp port 8766") {
		t.Errorf("filter %s", got)
	}

	w = world{clusterFrom: map[string]ops.Outcome{"n1": ok, "n2": ok}, directFrom: w.directFrom,
		nodePortOn: map[string]ops.Outcome{"n1": to, "n2": ok}}
	in = w.input(nil, Proxy{Mode: "iptables"})
	vs = Judge(in)
	r, planned = planRetry(in, vs[0])
	if !planned || r.Probe != ID || r.op.Target != "10.250.0.1" || r.op.Port != 30080 || r.At[0].Pod.Node != "n2" ||
		r.At[1].Node != "n1" || r.At[1].Carrying != "10.250.0.1" {
		t.Errorf("NodePort retry %+v %v", r, planned)
	}
	if vs[1].Failing() {
		t.Fatalf("n2 fails: %+v", vs[1])
	}

	in.Captures = map[string][]string{"n1": {"capture on node n1, pod veth of the source veth1: 3 packet(s), 1 flow(s)"}}
	failing := 0
	for _, f := range Analyze(in) {
		if f.Subject == nil || f.Subject.Name != "n1" || f.Status != model.StatusFail {
			continue
		}
		failing++
		if !strings.Contains(strings.Join(f.Evidence, "\n"), "capture on node n1, pod veth") {
			t.Errorf("%s lacks the capture evidence: %v", f.ID, f.Evidence)
		}
	}
	if failing == 0 {
		t.Error("no failing finding on n1")
	}
}

// TestRefusedIsNotThePodNetwork: an endpoint that refuses proves the path
// to it works, so the Service's failure is its port, not the pod network,
// also when another endpoint does not answer at all.
func TestRefusedIsNotThePodNetwork(t *testing.T) {
	to := ops.Timeout
	w := world{clusterFrom: map[string]ops.Outcome{"n1": ops.Refused, "n2": ops.OK}, directFrom: map[string]ops.Outcome{"n1": ops.Refused, "n2": ops.OK},
		nodePortOn: map[string]ops.Outcome{"n1": ops.OK, "n2": ops.OK}}
	got := Analyze(w.input(nil, Proxy{}))
	if got[0].ID != IDRefused || !strings.HasPrefix(got[0].RootCause, "Every endpoint of Service ns1/web (10.244.0.5:8766 on n1, 10.244.1.5:8766 on n2) answers a connection from node n1 with a reset: the packets arrive") {
		t.Errorf("all refuse: %s: %s", got[0].ID, got[0].RootCause)
	}
	in := w.input(nil, Proxy{})
	in.Sources[0].ClusterIP.Outcome, in.Sources[0].Direct[1].Outcome = to, to
	got = Analyze(in)
	if got[0].ID != IDRefused || !strings.Contains(got[0].RootCause, "Endpoints of Service ns1/web (10.244.0.5:8766 on n1) answer") ||
		!strings.Contains(got[0].RootCause, "the other endpoints do not answer at all") {
		t.Errorf("one refuses, one is silent: %s: %s", got[0].ID, got[0].RootCause)
	}
}
