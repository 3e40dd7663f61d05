package exposure

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

func TestPlan(t *testing.T) {
	md, err := ParseMetadata("192.168.2.10:80")
	if err != nil {
		t.Fatal(err)
	}
	got := Plan(PlanInput{Metadata: md,
		Nodes:        []NodeInfo{{Name: "n1", IP: "10.250.0.1"}, {Name: "n2", IP: "10.250.0.2"}},
		APIServerIPs: []string{"10.250.0.1"},
		NodePorts:    []NodePortSvc{{Ref: "web/shop", Port: 30080}}})
	var s []string
	for _, c := range got {
		s = append(s, string(c.Kind)+" "+c.Target()+" "+c.Node+c.Service)
	}
	want := "metadata 192.168.2.10:80 |etcd 10.250.0.1:2379 n1|apiserver-insecure 10.250.0.1:8080 n1|kubelet 10.250.0.1:10250 n1|kubelet-readonly 10.250.0.1:10255 n1|" +
		"kubelet 10.250.0.2:10250 n2|kubelet-readonly 10.250.0.2:10255 n2|nodeport 10.250.0.1:30080 n1web/shop"
	if strings.Join(s, "|") != want {
		t.Errorf("plan:\n%s\nwant\n%s", strings.Join(s, "|"), want)
	}
	if md, _ := ParseMetadata(""); md.String() != DefaultMetadata {
		t.Errorf("default metadata %s", md)
	}
	for _, bad := range []string{"169.254.169.254", "metadata:80", "1.2.3.4:0"} {
		if _, err := ParseMetadata(bad); err == nil {
			t.Errorf("ParseMetadata(%q) accepted", bad)
		}
	}
	if op := (Check{Kind: KubeletAPI, Addr: "10.250.0.1", Port: 10250}).Op(); !op.TLS || op.Path != "/pods" || op.Kind != ops.HTTP {
		t.Errorf("kubelet op %+v", op)
	}
}

func TestAnalyze(t *testing.T) {
	from := probes.Agent{Kind: probes.AgentPod, Node: "n1", Namespace: "ns", Pod: "netsleuth-pod-n1", IP: "10.244.0.5"}
	res := func(o ops.Outcome, status int, body string) []Seen {
		return []Seen{{From: from, Result: ops.Result{Outcome: o, Status: status, Body: body, Sent: 1}}}
	}
	cases := []struct {
		name   string
		check  Check
		seen   []Seen
		id     string
		status model.Status
		cause  string
		fix    string
	}{
		{"metadata reachable", Check{Kind: Metadata, Addr: "192.168.2.10", Port: 80}, res(ops.OK, 0, ""), IDMetadata, model.StatusFail,
			"Pods can open connections to the metadata address 192.168.2.10:80", "except: [192.168.2.10/32]"},
		{"metadata unreachable", Check{Kind: Metadata, Addr: "10.250.0.200", Port: 80}, res(ops.Timeout, 0, ""), IDMetadata, model.StatusPass, "", ""},
		{"metadata refused", Check{Kind: Metadata, Addr: "10.250.0.200", Port: 80}, res(ops.Refused, 0, ""), IDMetadata, model.StatusPass, "", ""},
		{"etcd open", Check{Kind: Etcd, Addr: "10.250.0.1", Port: 2379, Node: "n1"}, res(ops.OK, 0, ""), IDEtcd, model.StatusFail,
			"etcd listens on 10.250.0.1:2379", "{protocol: TCP, port: 2380, endPort: 65535}"},
		{"etcd loopback only", Check{Kind: Etcd, Addr: "10.250.0.1", Port: 2379, Node: "n1"}, res(ops.Refused, 0, ""), IDEtcd, model.StatusPass, "", ""},
		{"kubelet anonymous", Check{Kind: KubeletAPI, Addr: "10.250.0.1", Port: 10250, Node: "n1"}, res(ops.OK, 200, "{}"), IDKubeletAnonymous, model.StatusFail,
			"answered an unauthenticated GET /pods with 200", "authorization: {mode: Webhook}"},
		{"kubelet 401", Check{Kind: KubeletAPI, Addr: "10.250.0.1", Port: 10250, Node: "n1"}, res(ops.OK, 401, "Unauthorized"), IDKubeletAnonymous, model.StatusPass, "", ""},
		{"kubelet 403", Check{Kind: KubeletAPI, Addr: "10.250.0.1", Port: 10250, Node: "n1"}, res(ops.OK, 403, "Forbidden"), IDKubeletAnonymous, model.StatusPass, "", ""},
		{"read-only open", Check{Kind: KubeletReadOnly, Addr: "10.250.0.1", Port: 10255, Node: "n1"}, res(ops.OK, 0, ""), IDKubeletReadOnly, model.StatusFail,
			"read-only API on 10.250.0.1:10255", "readOnlyPort: 0"},
		{"read-only closed", Check{Kind: KubeletReadOnly, Addr: "10.250.0.1", Port: 10255, Node: "n1"}, res(ops.Refused, 0, ""), IDKubeletReadOnly, model.StatusPass, "", ""},
		{"insecure apiserver", Check{Kind: APIServerInsecure, Addr: "10.250.0.1", Port: 8080, Node: "n1"}, res(ops.OK, 200, `{"gitVersion":"v1.19.0"}`), IDAPIServerInsecure, model.StatusFail,
			"plain HTTP on 10.250.0.1:8080", "--insecure-port"},
		{"8080 is something else", Check{Kind: APIServerInsecure, Addr: "10.250.0.1", Port: 8080, Node: "n1"}, res(ops.OK, 200, "hello"), IDAPIServerInsecure, model.StatusPass, "", ""},
		{"nodeport", Check{Kind: NodePort, Addr: "10.250.0.1", Port: 30080, Node: "n1", Service: "web/shop"}, res(ops.OK, 0, ""), IDNodePort, model.StatusWarn,
			"Service web/shop has NodePort 30080", `kubectl -n web patch service shop`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Analyze(Input{Checks: []Check{tc.check}, Seen: [][]Seen{tc.seen}, PodCIDRs: []string{"10.244.0.0/24"}})
			if len(got) != 1 {
				t.Fatalf("got %d findings", len(got))
			}
			f := got[0]
			f.Probe = ID
			if f.ID != tc.id || f.Status != tc.status {
				t.Fatalf("got %s %s (%s), want %s %s", f.ID, f.Status, f.RootCause, tc.id, tc.status)
			}
			if err := f.Validate(); err != nil {
				t.Error(err)
			}
			if !strings.Contains(f.RootCause, tc.cause) {
				t.Errorf("root cause %q lacks %q", f.RootCause, tc.cause)
			}
			if tc.status != model.StatusPass && !strings.Contains(f.RootCause, "netsleuth-pod-n1") {
				t.Errorf("root cause does not name the pod: %s", f.RootCause)
			}
			if tc.fix != "" && !fixHas(f, tc.fix) {
				t.Errorf("no fix mentions %q: %+v", tc.fix, f.Fixes)
			}
			if tc.status != model.StatusPass && !fixHas(f, "-s 10.244.0.0/24 -d "+tc.check.Addr) {
				t.Errorf("no host firewall fix: %+v", f.Fixes)
			}
		})
	}
}

func TestNodePortsSkipsNetsleuth(t *testing.T) {
	svc := func(name string, labels map[string]string, np int32) corev1.Service {
		return corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: labels},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, NodePort: np}}}}
	}
	got := NodePorts([]corev1.Service{svc("mine", map[string]string{agent.LabelManagedBy: agent.ManagedBy}, 30001),
		svc("web", nil, 30002), svc("internal", nil, 0)})
	if len(got) != 1 || got[0] != (NodePortSvc{Ref: "ns/web", Port: 30002}) {
		t.Errorf("%+v", got)
	}
}

func fixHas(f model.Finding, s string) bool {
	for _, x := range f.Fixes {
		if strings.Contains(x.Description+x.Manifest+strings.Join(x.Commands, "\n"), s) {
			return true
		}
	}
	return false
}
