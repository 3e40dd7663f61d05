//go:build linux

package ops

import (
	"context"
	"testing"
)

// TestICMPErrorOfARefusal: a closed UDP port on loopback answers with an
// ICMP port unreachable from the target itself, which the result carries;
// a closed TCP port answers with a reset, which has none. Both arrived.
func TestICMPErrorOfARefusal(t *testing.T) {
	resp := Run(context.Background(), Request{Ops: []Op{
		{Kind: UDP, Target: "127.0.0.1", Port: freePort(t), Count: 1, TimeoutMs: 500},
		{Kind: TCP, Target: "127.0.0.1", Port: freePort(t)},
	}}, Env{})
	u, c := resp.Results[0], resp.Results[1]
	if u.Outcome != Refused || u.ICMP == nil || *u.ICMP != (ICMPError{Type: 3, Code: 3, From: "127.0.0.1"}) || !u.Arrived() {
		t.Errorf("UDP to a closed port: %s %+v arrived %v", u.Outcome, u.ICMP, u.Arrived())
	}
	if u.ICMP != nil && u.ICMP.String() != "ICMP destination unreachable code 3 (port unreachable) from 127.0.0.1" {
		t.Error(u.ICMP.String())
	}
	if c.Outcome != Refused || c.ICMP != nil || !c.Arrived() {
		t.Errorf("TCP to a closed port is a reset, no ICMP: %s %+v", c.Outcome, c.ICMP)
	}
}
