package agent

import (
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// TestOutcomeSaysWhoAnswered: evidence names the ICMP error and its sender,
// and says when no ICMP came back (the sender's own routes decided).
func TestOutcomeSaysWhoAnswered(t *testing.T) {
	op := ops.Op{Kind: ops.TCP, Target: "192.168.2.10", Port: 80}
	got := Outcome(ops.Result{Op: op, Outcome: ops.AdminProhibit, Error: "connect: no route to host", ICMP: &ops.ICMPError{Type: 3, Code: 13, From: "10.250.0.254"}})
	if !strings.HasSuffix(got, "[ICMP destination unreachable code 13 (communication administratively prohibited) from 10.250.0.254]") {
		t.Error(got)
	}
	got = Outcome(ops.Result{Op: op, Outcome: ops.NetUnreach, Error: "connect: network is unreachable"})
	if !strings.Contains(got, "no ICMP came back") {
		t.Error(got)
	}
	if got := Outcome(ops.Result{Op: op, Outcome: ops.Timeout, Error: "i/o timeout"}); strings.Contains(got, "[") {
		t.Error(got)
	}
}
