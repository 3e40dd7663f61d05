package nodenet_test

import (
	"fmt"
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
