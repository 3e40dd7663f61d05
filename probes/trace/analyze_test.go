package trace

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/nodenet"
)

func live(o ops.Outcome) []ops.Result {
	return []ops.Result{{Op: ops.Op{Kind: ops.TCP, Target: "10.244.1.9", Port: 8080}, Outcome: o}}
}

func healthyNode() *nodenet.Node {
	return &nodenet.Node{Name: "n1", PodCIDRs: []string{"10.244.0.0/24"}, Facts: agent.NodeFacts{Node: "n1",
		Sysctls: map[string]string{agent.SysIPForward: "1"}, IPTables: "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE\nCOMMIT\n"}}
}

func base() Input {
	allowed := model.Finding{ID: "policy.verdict", Status: model.StatusPass, Title: "allowed"}
	return Input{From: "ns/a", To: "ns/c:8080/tcp", SrcIP: netip.MustParseAddr("10.244.0.5"), SrcNode: "n1",
		Dest: netip.MustParseAddr("10.244.1.9"), DestKind: ToPod, DestNode: "n1", Port: 8080, Proto: "tcp", SenderRef: "stand-in",
		Policy: &allowed, PolicyAllowed: true, SrcFacts: healthyNode(), DstFacts: healthyNode(), Live: live(ops.OK)}
}

func statuses(fs []model.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.ID + "=" + string(f.Status) + " ")
	}
	return b.String()
}

func TestAnalyzeFirstBrokenHop(t *testing.T) {
	denied := model.Finding{ID: "policy.verdict", Status: model.StatusWarn, Title: "denied", RootCause: "NetworkPolicy denies it: ingress to ns/c is isolated by ns/deny.",
		Fixes: []model.Fix{{Description: "add a policy", Manifest: "kind: NetworkPolicy"}}}
	noFwd := healthyNode()
	noFwd.Facts.Sysctls[agent.SysIPForward] = "0"
	cases := []struct {
		name   string
		edit   func(*Input)
		broken string
		cause  string
	}{
		{"healthy", func(*Input) {}, "", ""},
		{"policy denies", func(in *Input) { in.Policy, in.PolicyAllowed, in.Live = &denied, false, live(ops.Timeout) }, IDPolicy, "ingress to ns/c is isolated"},
		{"ip_forward off", func(in *Input) { in.SrcFacts, in.Live = noFwd, live(ops.Timeout) }, IDSourceNode, "ip_forward is 0"},
		{"refused: nothing listens", func(in *Input) { in.Live = live(ops.Refused) }, IDDestination, "no process listens on tcp/8080"},
		{"lost past every hop", func(in *Input) { in.Live = live(ops.Timeout) }, IDConnection, "every hop before it checks out"},
		{"name does not resolve", func(in *Input) { in.Name, in.DNSFailed = "nope.example.com", "NXDOMAIN" }, IDDNS, "does not resolve"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.edit(&in)
			fs := Analyze(in)
			var broken *model.Finding
			for i := range fs {
				if strings.HasPrefix(fs[i].ID, "trace.") && fs[i].Status.Failing() && broken == nil {
					broken = &fs[i]
				}
				if fs[i].Key == "" {
					t.Errorf("%s has no key", fs[i].ID)
				}
			}
			switch {
			case tc.broken == "" && broken != nil:
				t.Fatalf("healthy trace broke at %s: %s", broken.ID, statuses(fs))
			case tc.broken == "":
				return
			case broken == nil || broken.ID != tc.broken || !strings.Contains(broken.RootCause, tc.cause):
				t.Fatalf("want broken at %s (%q), got %s", tc.broken, tc.cause, statuses(fs))
			}
			after := false
			for _, f := range fs {
				if f.ID == tc.broken {
					after = true
					continue
				}
				if after && f.Status != model.StatusSkip && strings.HasPrefix(f.ID, "trace.") {
					t.Errorf("hop %s after the broken one is %s", f.ID, f.Status)
				}
			}
		})
	}
}

func TestAnalyzeDNSCitesItsCause(t *testing.T) {
	in := base()
	cause := model.Finding{ID: "services.scaled-to-zero", Status: model.StatusFail, RootCause: "CoreDNS at zero", Subject: &model.Subject{Kind: "Service", Namespace: "kube-system", Name: "kube-dns"},
		Fixes: []model.Fix{{Description: "scale"}}}.WithKey("")
	in.Name, in.DNSFailed, in.DNSCauses = "c.ns.svc.cluster.local", "timeout", []model.Finding{cause}
	fs := Analyze(in)
	if fs[0].Key != cause.Key || fs[1].ID != IDDNS || fs[1].CausedBy != cause.Key || fs[1].RootCause != "CoreDNS at zero" {
		t.Fatalf("the dns hop does not cite the kube-dns cause: %+v", fs[:2])
	}
}
