package nodenet_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/probes/nodenet"
)

const dump = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:KUBE-FORWARD - [0:0]
:CNI-FORWARD - [0:0]
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -j CNI-FORWARD
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT
-A CNI-FORWARD -s 10.244.0.0/16 -j ACCEPT
-A CNI-FORWARD -d 10.244.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A CNI-FORWARD -i nsl-cni+ ! -o nsl-cni0 -p tcp -m tcp --dport 1000:2000 -j REJECT --reject-with icmp-port-unreachable
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:IP-MASQ-AGENT - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-X
-A KUBE-SEP-B1 -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp -j DNAT --to-destination 10.244.0.5:53
-A POSTROUTING -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT
-A IP-MASQ-AGENT -d 10.0.0.0/8,192.168.0.0/16 -j RETURN
-A IP-MASQ-AGENT -g MASQ-TAIL
-A MASQ-TAIL -j MASQUERADE
COMMIT
`

// FuzzEval parses arbitrary iptables-save text and walks packets built from
// the fuzzer's numbers through the chains the probes ask about. A verdict
// always has a target; a rule that decided is one of the dump's lines and
// its chain is named; a DROP or REJECT by a rule is never a guess; and
// KubeProxyRules over the same text keeps only lines of the dump.
func FuzzEval(f *testing.F) {
	f.Add(dump, uint32(0x0af40105), uint32(0x0af40205), uint8(0), uint16(80), "nsl-cni0", "nsl-br0")
	f.Add(dump, uint32(0x0af40105), uint32(0x08080808), uint8(1), uint16(53), "", "eth0")
	f.Add(dump, uint32(0xc0a80205), uint32(0x0af40205), uint8(0), uint16(1500), "nsl-cni1", "eth0")
	f.Add("*filter\n-A FORWARD -j A\n-A A -j B\n-A B -j A\n", uint32(1), uint32(2), uint8(2), uint16(0), "", "")
	f.Add("*filter\n:FORWARD ACCEPT\n-A FORWARD -s 10.0.0.0/8 -j DROP\n-A FORWARD -m set --match-set X src -j DROP\n", uint32(0x0a000001), uint32(2), uint8(3), uint16(22), "a", "b")
	protos := []string{"tcp", "udp", "icmp", ""}
	f.Fuzz(func(t *testing.T, text string, src, dst uint32, proto uint8, dport uint16, in, out string) {
		tb := nodenet.ParseTable(text)
		p := nodenet.Packet{Src: addr4(src), Dst: addr4(dst), InIface: in, OutIface: out, Proto: protos[int(proto)%len(protos)], DPort: int(dport)}
		for _, q := range []struct{ table, chain string }{{"filter", "FORWARD"}, {"nat", "POSTROUTING"}, {"nat", "PREROUTING"}, {"filter", "INPUT"}} {
			v := tb.Eval(q.table, q.chain, p)
			if v.Target == "" {
				t.Fatalf("%s/%s: no target", q.table, q.chain)
			}
			if v.Rule != "" && !hasLine(text, v.Rule) {
				t.Fatalf("%s/%s: deciding rule %q is not in the dump", q.table, q.chain, v.Rule)
			}
			if v.Rule != "" && !tb.HasChain(q.table, v.Chain) {
				t.Fatalf("%s/%s: deciding chain %q is not in the table", q.table, q.chain, v.Chain)
			}
			if v.Exempt != "" && !hasLine(text, v.Exempt) {
				t.Fatalf("%s/%s: exemption %q is not in the dump", q.table, q.chain, v.Exempt)
			}
			if v.Dropped() && v.Rule != "" && unjudgeable(v.Rule) {
				t.Fatalf("%s/%s: a drop by %q, a rule whose match cannot be judged", q.table, q.chain, v.Rule)
			}
			_ = v.NATed()
			_ = tb.Policy(q.table, q.chain)
		}
		rs := nodenet.KubeProxyRules(text, nodenet.ServiceRef{Namespace: "kube-system", Name: "kube-dns", PortName: "dns", ClusterIP: "10.96.0.10", Port: 53, NodePort: 30053})
		for _, l := range rs.Lines {
			if !hasLine(text, l) {
				t.Fatalf("kube-proxy rule %q is not in the dump", l)
			}
		}
	})
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// hasLine reports whether some line of text, trimmed, is l.
func hasLine(text, l string) bool {
	for _, x := range strings.Split(text, "\n") {
		if strings.TrimSpace(strings.TrimSuffix(x, "\r")) == l {
			return true
		}
	}
	return false
}

// unjudgeable reports whether a rule has a match Eval cannot judge: an
// ipset match, or a match module it does not read. Whole fields, as
// iptables reads them ("--match-set0" is no --match-set).
func unjudgeable(line string) bool {
	f := strings.Fields(line)
	for i, x := range f {
		if x == "--match-set" {
			return true
		}
		if x == "-m" && i+1 < len(f) && slices.Contains([]string{"physdev", "multiport", "statistic", "recent", "u32", "bpf", "owner", "cgroup"}, f[i+1]) {
			return true
		}
	}
	return false
}
