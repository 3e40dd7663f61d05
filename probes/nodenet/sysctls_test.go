package nodenet_test

import (
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent"
	. "github.com/netsleuth/netsleuth/probes/nodenet"
)

func TestSysctls(t *testing.T) {
	healthy := map[string]string{agent.SysIPForward: "1", agent.SysBridgeNF: "1", agent.SysConntrackCnt: "855", agent.SysConntrackMax: "262144"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for kk, vv := range healthy {
			m[kk] = vv
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name   string
		files  map[string]string
		id     string
		status model.Status
		cause  string
		fix    string
	}{
		{"healthy forward", healthy, IDIPForward, model.StatusPass, "", ""},
		{"healthy bridge", healthy, IDBridgeNF, model.StatusPass, "", ""},
		{"healthy conntrack", healthy, IDConntrack, model.StatusPass, "", ""},
		{"forward off", with(agent.SysIPForward, "0"), IDIPForward, model.StatusFail, "net.ipv4.ip_forward is 0 on node n1", "sysctl -w net.ipv4.ip_forward=1"},
		{"forward unreadable", with(agent.SysIPForward, ""), IDIPForward, model.StatusError, "could not read", "sysctl net.ipv4.ip_forward"},
		{"bridge off", with(agent.SysBridgeNF, "0"), IDBridgeNF, model.StatusFail, "bridge-nf-call-iptables is 0 on node n1", "sysctl -w net.bridge.bridge-nf-call-iptables=1"},
		{"br_netfilter missing", with(agent.SysBridgeNF, ""), IDBridgeNF, model.StatusWarn, "br_netfilter is not loaded", "modprobe br_netfilter"},
		{"conntrack 79", map[string]string{agent.SysConntrackCnt: "799", agent.SysConntrackMax: "1000"}, IDConntrack, model.StatusPass, "", ""},
		{"conntrack 86", with(agent.SysConntrackMax, "1000"), IDConntrack, model.StatusWarn, "855 of 1000 entries (86 %), above 80 %", ""},
		{"conntrack 80", map[string]string{agent.SysConntrackCnt: "800", agent.SysConntrackMax: "1000"}, IDConntrack, model.StatusWarn, "800 of 1000 entries (80 %), above 80 %", "nf_conntrack_max=2000"},
		{"conntrack 95", map[string]string{agent.SysConntrackCnt: "950", agent.SysConntrackMax: "1000"}, IDConntrack, model.StatusFail, "nearly full", "maxPerCore"},
		{"conntrack absent", with(agent.SysConntrackCnt, ""), IDConntrack, model.StatusSkip, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var f model.Finding
			n := Node{Name: "n1", Facts: agent.NodeFacts{Node: "n1", Sysctls: tc.files}}
			for _, x := range []model.Finding{IPForward(n), BridgeNF(n), Conntrack(n)} {
				if x.ID == tc.id {
					f = x
				}
			}
			if f.Status != tc.status || f.Subject == nil || f.Subject.Name != "n1" {
				t.Fatalf("%s: status %s subject %v, want %s (%s)", tc.id, f.Status, f.Subject, tc.status, f.RootCause)
			}
			if !strings.Contains(f.RootCause, tc.cause) {
				t.Errorf("root cause %q lacks %q", f.RootCause, tc.cause)
			}
			if tc.fix != "" && !strings.Contains(fixText(f), tc.fix) {
				t.Errorf("fixes lack %q: %s", tc.fix, fixText(f))
			}
			if !strings.Contains(strings.Join(f.Evidence, "\n"), "node agent on n1: cat /proc/sys/") {
				t.Errorf("evidence: %v", f.Evidence)
			}
			if f.Status != model.StatusPass && f.Status != model.StatusSkip {
				if err := (model.Finding{Probe: "node-sysctl", ID: f.ID, Status: f.Status, Title: f.Title, RootCause: f.RootCause, Fixes: f.Fixes}).Validate(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func fixText(f model.Finding) string {
	var b strings.Builder
	for _, x := range f.Fixes {
		b.WriteString(x.Description + "\n" + strings.Join(x.Commands, "\n") + "\n")
	}
	return b.String()
}
