package external

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/nodenet"
)

const routesOK = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
nsl-br0	0002A8C0	FE00FA0A	0003	0	0	0	00FFFFFF	0	0	0
*	0002A8C0	00000000	0201	0	0	4000	00FFFFFF	0	0	0
`

// routesNoExt lacks the 192.168.2.0/24 route: only the reject route remains.
const routesNoExt = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
*	0002A8C0	00000000	0201	0	0	4000	00FFFFFF	0	0	0
`

const natOK = `*nat
:POSTROUTING ACCEPT [0:0]
:KUBE-POSTROUTING - [0:0]
:NSL-NAT - [0:0]
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A POSTROUTING -m comment --comment netsleuth-lab -j NSL-NAT
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A NSL-NAT -s 10.244.0.0/16 -d 192.168.2.0/24 -j MASQUERADE
COMMIT
*filter
:FORWARD ACCEPT [0:0]
COMMIT
`

var natNone = strings.Replace(natOK, "-A NSL-NAT -s 10.244.0.0/16 -d 192.168.2.0/24 -j MASQUERADE\n", "", 1)

const natMasqAgent = `*nat
:POSTROUTING ACCEPT [0:0]
:IP-MASQ-AGENT - [0:0]
-A POSTROUTING -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT
-A IP-MASQ-AGENT -d 10.0.0.0/8 -j RETURN
-A IP-MASQ-AGENT -d 192.168.0.0/16 -j RETURN
-A IP-MASQ-AGENT -j MASQUERADE
COMMIT
`

func facts(t *testing.T, ipf, routes, ipt string) agent.NodeFacts {
	rs, err := ops.ParseProcRoute(routes)
	if err != nil {
		t.Fatal(err)
	}
	return agent.NodeFacts{Sysctls: map[string]string{agent.SysIPForward: ipf}, Routes: rs, IPTables: ipt}
}

func results(o ops.Outcome) []ops.Result {
	return []ops.Result{{Op: ops.Op{Kind: ops.ICMP, Target: "192.168.2.10"}, Outcome: o, Sent: 2},
		{Op: ops.Op{Kind: ops.TCP, Target: "192.168.2.10", Port: 80}, Outcome: o, Sent: 1}}
}

func TestAnalyze(t *testing.T) {
	tg, _ := ParseTargets([]string{"192.168.2.10:80"})
	pod := func(n string) probes.Agent {
		return probes.Agent{Kind: probes.AgentPod, Node: n, Namespace: "ns", Pod: "p-" + n, IP: map[string]string{"n1": "10.244.0.5", "n2": "10.244.1.5"}[n]}
	}
	mk := func(n string, node, fromPod ops.Outcome) Probe {
		return Probe{Node: n, Target: tg[0], Pod: pod(n), NodeAg: probes.Agent{Kind: probes.AgentNode, Node: n},
			FromNode: results(node), FromPod: results(fromPod)}
	}
	cidrs := map[string][]string{"n1": {"10.244.0.0/24"}, "n2": {"10.244.1.0/24"}}
	ok, to := ops.OK, ops.Timeout
	healthyN2 := facts(t, "1", routesOK, natOK)
	cases := []struct {
		name, id, cause, fix string
		probes               []Probe
		n1                   agent.NodeFacts
	}{
		{"healthy", IDOK, "", "", []Probe{mk("n1", ok, ok)}, facts(t, "1", routesOK, natOK)},
		{"refused counts as reached", IDOK, "", "", []Probe{mk("n1", ops.Refused, ops.Refused)}, facts(t, "1", routesOK, natOK)},
		{"snat dropped", nodenet.IDNoMasquerade, "covers pod CIDR 10.244.0.0/24 → 192.168.2.0/24",
			"iptables -t nat -C POSTROUTING -s 10.244.0.0/24 -d 192.168.2.0/24 -j MASQUERADE 2>/dev/null || iptables -t nat -A POSTROUTING -s 10.244.0.0/24 -d 192.168.2.0/24 -j MASQUERADE",
			[]Probe{mk("n1", ok, to)}, facts(t, "1", routesOK, natNone)},
		{"ip_forward off", nodenet.IDIPForward, "ip_forward is 0 on node n1", "sysctl -w net.ipv4.ip_forward=1",
			[]Probe{mk("n1", ok, to)}, facts(t, "0", routesOK, natOK)},
		{"forward drop", nodenet.IDForwardDrop, "policy DROP", "iptables -C FORWARD -s 10.244.0.0/24 -j ACCEPT 2>/dev/null || iptables -I FORWARD -s 10.244.0.0/24 -j ACCEPT",
			[]Probe{mk("n1", ok, to)}, facts(t, "1", routesOK, strings.Replace(natOK, ":FORWARD ACCEPT", ":FORWARD DROP", 1))},
		{"ip-masq-agent exempts", nodenet.IDMasqueradeExempt, "IP-MASQ-AGENT", "nonMasqueradeCIDRs",
			[]Probe{mk("n1", ok, to)}, facts(t, "1", routesOK, natMasqAgent)},
		{"masqueraded but blocked", IDPodUnreachable, "egress NetworkPolicy", "networkpolicy",
			[]Probe{mk("n1", ok, to)}, facts(t, "1", routesOK, natOK)},
		{"node route removed", nodenet.IDNoRoute, "only the route", "ip route replace 192.168.2.0/24 via 10.250.0.254",
			[]Probe{mk("n1", ops.HostUnreach, ops.HostUnreach), mk("n2", ok, ok)}, facts(t, "1", routesNoExt, natOK)},
		{"target down everywhere", IDTargetDown, "target is down", "ping",
			[]Probe{mk("n1", to, to), mk("n2", to, to)}, facts(t, "1", routesOK, natOK)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := Analyze(Input{Probes: tc.probes, PodCIDRs: cidrs, Facts: map[string]agent.NodeFacts{"n1": tc.n1, "n2": healthyN2}})
			f := fs[0]
			if f.ID != tc.id || !strings.Contains(f.RootCause, tc.cause) || !mentions(f, tc.fix) {
				t.Fatalf("got %s: %s\nfixes %+v", f.ID, f.RootCause, f.Fixes)
			}
			full := f
			full.Probe = ID
			if err := full.Validate(); err != nil {
				t.Error(err)
			}
			if f.Key == "" || f.Status == model.StatusPass || !strings.HasPrefix(f.ID, "node.") {
				return
			}
			// A node fact is the cause; the probe's own finding follows as its symptom.
			s := fs[1]
			if s.CausedBy != f.Key || s.RootCause != f.RootCause || len(s.Fixes) != len(f.Fixes) || !strings.HasPrefix(s.ID, ID+".") {
				t.Errorf("symptom %s does not cite %s: %+v", s.ID, f.Key, s)
			}
			if len(s.Evidence) < 4 {
				t.Errorf("thin evidence: %v", s.Evidence)
			}
			if !slices.ContainsFunc(f.Fixes, func(fx model.Fix) bool { return fx.Node == "n1" }) {
				t.Errorf("no fix names node n1: %+v", f.Fixes)
			}
		})
	}
}

func mentions(f model.Finding, s string) bool {
	for _, x := range f.Fixes {
		if strings.Contains(x.Description+strings.Join(x.Commands, "\n")+x.Manifest, s) {
			return true
		}
	}
	return s == ""
}

func TestParseTargets(t *testing.T) {
	// DNS names are the dns probe's: left out, not bad.
	ts, bad := ParseTargets([]string{"192.168.2.10", "192.168.2.10:443", "192.168.2.0/24", "example.com", "1.2.3.4:99999"})
	if len(bad) != 1 {
		t.Errorf("bad: %v", bad)
	}
	if len(ts) != 5 || ts[1].Port != 443 || ts[2].Addr != netip.MustParseAddr("192.168.2.1") || ts[2].Net != "192.168.2.0/24" {
		t.Errorf("targets: %+v", ts)
	}
}
