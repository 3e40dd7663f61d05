package nodenet_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netsleuth/netsleuth/probes/nodenet"
)

// Chains that jump to the same chain twice, thirty deep, are walked in
// linear time; before, each level doubled the walk (2^30 visits).
func TestEvalSharedChainsAreWalkedOnce(t *testing.T) {
	var b strings.Builder
	b.WriteString("*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j C0\n")
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&b, "-A C%d -j C%d\n-A C%d -j C%d\n", i, i+1, i, i+1)
	}
	b.WriteString("-A C30 -s 192.0.2.0/24 -j ACCEPT\n-A FORWARD -d 10.244.0.0/16 -j ACCEPT\n")
	tb := nodenet.ParseTable(b.String())
	start := time.Now()
	v := tb.Eval("filter", "FORWARD", nodenet.Packet{Src: addr4(0x0af40105), Dst: addr4(0x0af40205)})
	if v.Target != "ACCEPT" || v.Rule != "-A FORWARD -d 10.244.0.0/16 -j ACCEPT" {
		t.Errorf("verdict %+v", v)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Eval took %v", d)
	}
	// A loop, which the kernel would refuse, ends the walk too.
	loop := nodenet.ParseTable("*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j A\n-A A -j A\n-A A -j A\n")
	if v := loop.Eval("filter", "FORWARD", nodenet.Packet{}); v.Target != "DROP" || v.Rule != "" {
		t.Errorf("loop verdict %+v", v)
	}
}

// Marks are followed as the kernel sets them: a chain that marks the packet
// accepted lets the caller's mark-matching RETURN end the walk before an
// unconditional drop, as felix's per-endpoint chains do; a mark set by a rule
// that only may match makes every later mark test unjudged.
func TestEvalFollowsMarks(t *testing.T) {
	const dump = `*filter
:FORWARD ACCEPT [0:0]
-A FORWARD -j EP
-A EP -j MARK --set-xmark 0x0/0x10000
-A EP -j PROFILE
-A EP -m mark --mark 0x10000/0x10000 -j RETURN
-A EP -m comment --comment "Drop if no profiles matched" -j DROP
-A PROFILE -s 10.244.0.0/16 -j MARK --set-xmark 0x10000/0x10000
-A PROFILE -m set --match-set PEERS src -j MARK --set-xmark 0x10000/0x10000
COMMIT
`
	tb := nodenet.ParseTable(dump)
	in := nodenet.Packet{Src: netip.MustParseAddr("10.244.0.5"), Dst: netip.MustParseAddr("10.244.1.5"), Proto: "tcp", DPort: 80}
	if v := tb.Eval("filter", "FORWARD", in); v.Dropped() || strings.Join(v.Walked, " ") != "FORWARD EP PROFILE" {
		t.Errorf("a marked packet: %+v", v)
	}
	out := in
	out.Src = netip.MustParseAddr("192.0.2.1")
	if v := tb.Eval("filter", "FORWARD", out); v.Dropped() {
		t.Errorf("the set may have marked it: no certain drop, got %+v", v)
	}
	sets := tb.WithIPSets("create PEERS hash:net family inet\nadd PEERS 198.51.100.0/24\n")
	if v := sets.Eval("filter", "FORWARD", out); !v.Dropped() || v.Chain != "EP" {
		t.Errorf("not in the set, so never marked: want the drop in EP, got %+v", v)
	}
	out.Src = netip.MustParseAddr("198.51.100.7")
	if v := sets.Eval("filter", "FORWARD", out); v.Dropped() {
		t.Errorf("in the set: marked and returned, got %+v", v)
	}
}

func TestParseIPSets(t *testing.T) {
	s := nodenet.ParseIPSets(`create cali40masq-ipam-pools hash:net family inet hashsize 1024 maxelem 1048576
add cali40masq-ipam-pools 10.244.1.0/24
create cali40this-host hash:ip family inet
add cali40this-host 10.250.0.1
create cali40n:ports hash:ip,port family inet
add cali40n:ports 10.244.0.5,tcp:8080
create odd hash:net family inet
add odd 10.0.0.0/8 nomatch
`)
	for _, c := range []struct {
		set, addr  string
		has, known bool
	}{
		{"cali40masq-ipam-pools", "10.244.1.9", true, true},
		{"cali40masq-ipam-pools", "10.244.0.9", false, true},
		{"cali40this-host", "10.250.0.1", true, true},
		{"cali40n:ports", "10.244.0.5", false, false},
		{"odd", "10.1.1.1", false, false},
		{"missing", "10.1.1.1", false, false},
	} {
		if has, known := s.Has(c.set, netip.MustParseAddr(c.addr)); has != c.has || known != c.known {
			t.Errorf("%s has %s: %v %v, want %v %v", c.set, c.addr, has, known, c.has, c.known)
		}
	}
}
