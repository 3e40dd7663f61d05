package nodeports

import (
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/assets"
	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

var (
	data    = assets.MustNodePorts()
	kubeadm = data.Profiles["kubeadm"]
	cp      = NodeInfo{Name: "n1", IP: "10.250.0.1", Roles: []string{"control-plane", "worker"}}
	worker  = NodeInfo{Name: "n2", IP: "10.250.0.2", Roles: []string{"worker"}}
	cilium  = &CNIAgent{CNI: data.CNIs[0], Namespace: "kube-system", Pod: "cilium-x7k2p"}
)

func TestPortsFor(t *testing.T) {
	tcp, udp := PortsFor(kubeadm, cp, nil)
	var got []string
	for _, p := range tcp {
		got = append(got, strings.Fields(p.Role)[0]+":"+strconv.Itoa(p.Port))
	}
	want := "control-plane:6443 control-plane:2379 control-plane:2380 control-plane:10250 control-plane:10259 control-plane:10257 worker:10256 worker:30000"
	if strings.Join(got, " ") != want || len(udp) != 0 {
		t.Errorf("got %s, udp %v\nwant %s", strings.Join(got, " "), udp, want)
	}
	tcp, udp = PortsFor(kubeadm, worker, cilium)
	if len(tcp) != 5 || len(udp) != 2 || tcp[3].Port != 4240 || udp[0].Firewalld() != "8472/udp" {
		t.Errorf("worker with cilium: %+v %+v", tcp, udp)
	}
}

func attempts(n NodeInfo, cni *CNIAgent, outcome func(port int) ops.Outcome) []Attempt {
	from := probes.Agent{Kind: probes.AgentNode, Node: "n2", Namespace: "ns", Pod: "netsleuth-node-n2", IP: "10.250.0.2"}
	tcp, _ := PortsFor(kubeadm, n, cni)
	var out []Attempt
	for _, p := range tcp {
		out = append(out, Attempt{Port: p, From: from, Result: ops.Result{Op: ops.Op{Kind: ops.TCP, Target: n.IP, Port: p.Port}, Outcome: outcome(p.Port), Sent: 1}})
	}
	return out
}

const ciliumChains = "*filter\n:INPUT ACCEPT [0:0]\n:CILIUM_INPUT - [0:0]\n:CILIUM_FORWARD - [0:0]\nCOMMIT\n"

func TestAnalyze(t *testing.T) {
	lab := func(p int) ops.Outcome { // etcd, scheduler, controller-manager on loopback only
		if p == 2379 || p == 2380 || p == 10259 || p == 10257 || p == 30000 {
			return ops.Refused
		}
		return ops.OK
	}
	firewalled := func(p int) ops.Outcome {
		if p == 6443 || p == 30000 {
			return ops.Timeout
		}
		if p == 10250 {
			return ops.HostUnreach // firewalld's reject: icmp-host-prohibited
		}
		return ops.OK
	}
	cases := []struct {
		name   string
		target Target
		want   map[string]model.Status
		cause  string
		fix    string
	}{
		{"lab healthy", Target{Node: cp, Attempts: attempts(cp, nil, lab)}, map[string]model.Status{IDOK: model.StatusPass}, "", ""},
		{"filtered", Target{Node: cp, Attempts: attempts(cp, nil, firewalled)}, map[string]model.Status{IDFiltered: model.StatusFail},
			"drops or rejects 6443/tcp (Kubernetes API server), 10250/tcp (kubelet API), 30000/tcp (NodePort Services) from n2",
			"firewall-cmd --permanent --zone=public --add-port=30000-32767/tcp"},
		{"kubelet down", Target{Node: worker, Attempts: attempts(worker, nil, func(int) ops.Outcome { return ops.Refused })},
			map[string]model.Status{IDNotListening: model.StatusWarn}, "answers port 10250 (kubelet API) with a RST", "ss -ltnp"},
		{"cilium chains present", Target{Node: worker, CNI: cilium, IPTables: ciliumChains, Attempts: attempts(worker, cilium, lab)},
			map[string]model.Status{IDOK: model.StatusPass, IDCNIChains: model.StatusPass}, "", ""},
		{"cilium chains gone", Target{Node: worker, CNI: cilium, IPTables: "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", Attempts: attempts(worker, cilium, lab)},
			map[string]model.Status{IDOK: model.StatusPass, IDCNIChainsGone: model.StatusFail},
			"cilium agent pod kube-system/cilium-x7k2p runs on node n2 but no CILIUM_* chain", "kubectl -n kube-system delete pod cilium-x7k2p"},
		{"filtered with cilium", Target{Node: worker, CNI: cilium, IPTables: ciliumChains, Attempts: attempts(worker, cilium, firewalled)},
			map[string]model.Status{IDFiltered: model.StatusFail, IDCNIChains: model.StatusPass}, "4240", "kubectl -n kube-system delete pod cilium-x7k2p"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Analyze(Input{Profile: "kubeadm", Targets: []Target{tc.target}})
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %v: %+v", len(got), tc.want, got)
			}
			for _, f := range got {
				f.Probe = ID
				if st, ok := tc.want[f.ID]; !ok || st != f.Status {
					t.Errorf("unexpected %s %s (%s)", f.ID, f.Status, f.RootCause)
				}
				if err := f.Validate(); err != nil {
					t.Error(err)
				}
				if f.Status == model.StatusPass {
					continue
				}
				if tc.cause != "" && f.ID != IDCNIChains && !strings.Contains(f.RootCause+strings.Join(f.Evidence, " "), tc.cause) {
					t.Errorf("%s: root cause %q lacks %q", f.ID, f.RootCause, tc.cause)
				}
				if tc.fix != "" && !fixHas(f, tc.fix) {
					t.Errorf("%s: no fix mentions %q: %+v", f.ID, tc.fix, f.Fixes)
				}
			}
		})
	}
}

func TestRoles(t *testing.T) {
	node := func(name, ip string, labels map[string]string) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	}
	got := Roles([]corev1.Node{node("w", "10.0.0.3", nil), node("lb", "10.0.0.2", map[string]string{"node-role.kubernetes.io/load-balancer": ""}),
		node("api", "10.0.0.1", nil)}, []string{"10.0.0.1"}, data.RoleLabels)
	var s []string
	for _, n := range got {
		s = append(s, n.Name+"="+strings.Join(n.Roles, "+"))
	}
	if strings.Join(s, " ") != "api=control-plane+worker lb=load-balancer+worker w=worker" {
		t.Errorf("roles: %s", strings.Join(s, " "))
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
