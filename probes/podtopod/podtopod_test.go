package podtopod

import (
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/nodenet"
)

var (
	n1 = Node{Name: "n1", IP: "10.250.0.1", PodCIDRs: []string{"10.244.0.0/24"}}
	n2 = Node{Name: "n2", IP: "10.250.0.2", PodCIDRs: []string{"10.244.1.0/24"}}
	a1 = probes.Agent{Kind: probes.AgentPod, Node: "n1", Namespace: "ns", Pod: "p1", IP: "10.244.0.5"}
	b1 = probes.Agent{Kind: probes.AgentPeer, Node: "n1", Namespace: "ns", Pod: "q1", IP: "10.244.0.6"}
	a2 = probes.Agent{Kind: probes.AgentPod, Node: "n2", Namespace: "ns", Pod: "p2", IP: "10.244.1.5"}
)

func res(kind ops.Kind, target string, o ops.Outcome) ops.Result {
	r := ops.Result{Op: ops.Op{Kind: kind, Target: target, Port: 8765}, Outcome: o, Sent: 3}
	if o == ops.OK {
		r.Received, r.RTTsMs = 3, []float64{0.1, 0.2, 0.3}
	}
	return r
}

func pair(from, to probes.Agent, icmp, tcp, udp ops.Outcome) Pair {
	return Pair{From: from, To: to, ICMP: res(ops.ICMP, to.IP, icmp), TCP: res(ops.TCP, to.IP, tcp), UDP: res(ops.UDP, to.IP, udp)}
}

const routes = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
nsl-cni0	0000F40A	00000000	0001	0	0	0	00FFFFFF	0	0	0
nsl-br0	0001F40A	0200FA0A	0003	0	0	0	00FFFFFF	0	0	0
`

func facts(t *testing.T, node, ipf, routeText, ipt string) agent.NodeFacts {
	rs, err := ops.ParseProcRoute(routeText)
	if err != nil {
		t.Fatal(err)
	}
	return agent.NodeFacts{Node: node, Sysctls: map[string]string{agent.SysIPForward: ipf}, Routes: rs, IPTables: ipt}
}

func TestAnalyze(t *testing.T) {
	ok, to := ops.OK, ops.Timeout
	healthy := []Pair{pair(a1, b1, ok, ok, ok), pair(a1, a2, ok, ok, ok), pair(a2, a1, ok, ok, ok)}
	crossDown := []Pair{pair(a1, b1, ok, ok, ok), pair(a1, a2, to, to, to), pair(a2, a1, to, to, to)}
	cases := []struct {
		name    string
		in      Input
		want    string
		status  model.Status
		subject string
		cause   string
		fix     string
	}{
		{"healthy", Input{Nodes: []Node{n1, n2}, Pairs: healthy}, IDOK, model.StatusPass, "", "", ""},
		{"ip_forward off on n1", Input{Nodes: []Node{n1, n2}, Pairs: crossDown,
			Facts: map[string]agent.NodeFacts{"n1": facts(t, "n1", "0", routes, ""), "n2": facts(t, "n2", "1", routes, "")}},
			nodenet.IDIPForward, model.StatusFail, "Node/n1", "ip_forward is 0 on node n1", "sysctl -w net.ipv4.ip_forward=1"},
		{"no pod route on n1", Input{Nodes: []Node{n1, n2}, Pairs: crossDown,
			Facts: map[string]agent.NodeFacts{"n1": facts(t, "n1", "1", routes[:strings.LastIndex(routes[:len(routes)-1], "\n")+1], "")}},
			nodenet.IDNoRoute, model.StatusFail, "Node/n1", "no route at all", "ip route replace 10.244.1.0/24 via 10.250.0.2"},
		{"FORWARD drop on n2", Input{Nodes: []Node{n1, n2}, Pairs: crossDown,
			Facts: map[string]agent.NodeFacts{"n2": facts(t, "n2", "1", routes, "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n")}},
			nodenet.IDForwardDrop, model.StatusFail, "Node/n2", "policy DROP", "iptables -C FORWARD -s 10.244.1.0/24 -j ACCEPT 2>/dev/null || iptables -I FORWARD -s 10.244.1.0/24 -j ACCEPT"},
		{"underlay blocks", Input{Nodes: []Node{n1, n2}, Pairs: crossDown,
			Facts: map[string]agent.NodeFacts{"n1": facts(t, "n1", "1", routes, ""), "n2": facts(t, "n2", "1", routes, "")}},
			IDCrossNode, model.StatusFail, "NodePair/n1<->n2", "overlay", "8472"},
		{"same node broken", Input{Nodes: []Node{n1, n2}, Pairs: []Pair{pair(a1, b1, to, to, to), pair(a1, a2, ok, ok, ok)}},
			IDSameNode, model.StatusFail, "Node/n1", "local path", "ipmasq"},
		// A refusal proves the path: not the node, not the underlay.
		{"peer refuses", Input{Nodes: []Node{n1, n2}, Pairs: []Pair{pair(a1, b1, ok, ok, ok), pair(a1, a2, ok, ops.Refused, to)},
			Facts: map[string]agent.NodeFacts{"n1": facts(t, "n1", "0", routes, "")}},
			IDRefused, model.StatusFail, "Pod/ns/p2", "the packets crossed the pod network, so the path between the nodes works", "REJECT"},
		{"udp blocked", Input{Nodes: []Node{n1, n2}, Pairs: []Pair{pair(a1, a2, ok, ok, to)}},
			IDProtocol, model.StatusWarn, "", "ICMP or UDP", "iptables -S"},
		{"agent not started", Input{Nodes: []Node{n1}, NotStarted: []probes.Agent{{Kind: probes.AgentPod, Node: "n2", Namespace: "ns", Pod: "p2",
			Err: &probes.AgentStartError{Reason: "ErrImageNeverPull", Detail: "not present"}}}},
			IDAgentNotStarted, model.StatusError, "Node/n2", "cannot pull it", "--agent-image"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := Analyze(tc.in)
			var got *model.Finding
			for i := range fs {
				if fs[i].ID == tc.want {
					got = &fs[i]
				}
				if fs[i].ID == IDOK && tc.want != IDOK {
					t.Errorf("ok finding next to a failure: %+v", fs)
				}
				if err := (model.Finding{Probe: ID, ID: fs[i].ID, Title: fs[i].Title, Status: fs[i].Status, RootCause: fs[i].RootCause, Fixes: fs[i].Fixes}).Validate(); err != nil {
					t.Error(err)
				}
			}
			if got == nil {
				t.Fatalf("no %s in %+v", tc.want, fs)
			}
			if strings.HasPrefix(tc.want, "node.") && !cites(fs, got.Key) {
				t.Errorf("no pair finding cites %s as its cause: %+v", got.Key, fs)
			}
			if got.Status != tc.status || (tc.subject != "" && got.Subject.String() != tc.subject) ||
				!strings.Contains(got.RootCause, tc.cause) || !mentions(*got, tc.fix) {
				t.Errorf("got %+v", *got)
			}
		})
	}
}

// cites reports whether a finding of this probe is a symptom of key.
func cites(fs []model.Finding, key string) bool {
	for _, f := range fs {
		if f.CausedBy == key && key != "" && strings.HasPrefix(f.ID, ID+".") {
			return true
		}
	}
	return false
}

func mentions(f model.Finding, s string) bool {
	for _, x := range f.Fixes {
		if strings.Contains(x.Description, s) || strings.Contains(strings.Join(x.Commands, "\n"), s) {
			return true
		}
	}
	return s == ""
}

func TestSampleBoundsPairs(t *testing.T) {
	var ns []Node
	for i := range 100 {
		ns = append(ns, Node{Name: string(rune('a'+i%26)) + string(rune('a'+i/26))})
	}
	s := Sample(ns, 30)
	if k := len(s); k*(k-1) > 30 || k < 2 {
		t.Errorf("sampled %d nodes", k)
	}
	if len(Sample(ns[:3], 30)) != 3 {
		t.Error("a small cluster must not be sampled")
	}
}

func TestFailingNodes(t *testing.T) {
	got := FailingNodes([]Pair{pair(a1, a2, ops.OK, ops.Timeout, ops.OK), pair(a1, b1, ops.OK, ops.OK, ops.OK)})
	if strings.Join(got, ",") != "n1,n2" {
		t.Errorf("got %v", got)
	}
	if got := FailingNodes([]Pair{pair(a1, a2, ops.OK, ops.Refused, ops.OK)}); len(got) != 0 {
		t.Errorf("a refused pair has no node fault to read, got %v", got)
	}
}
