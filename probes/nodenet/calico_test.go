package nodenet_test

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/nodenet"
)

// calicoNode is nsl-node1 of the lab's calico profile as its node agent
// sees it (testdata/calico-node1.iptables and .ipset, saved from the lab:
// felix v3.31 with CoreDNS on cali48607a7978f and a pod on cali528411a88f2,
// and natOutgoing on in both nodes' pools), with the routes of those pods,
// of one pod felix has not programmed, and of the node's networks.
func calicoNode(t *testing.T, ipsets string) nodenet.Node {
	t.Helper()
	ipt, err := os.ReadFile("testdata/calico-node1.iptables")
	if err != nil {
		t.Fatal(err)
	}
	if ipsets == "" {
		b, err := os.ReadFile("testdata/calico-node1.ipset")
		if err != nil {
			t.Fatal(err)
		}
		ipsets = string(b)
	}
	facts := agent.NodeFacts{Node: "nsl-node1", Sysctls: map[string]string{agent.SysIPForward: "1"}, IPTables: string(ipt), IPSets: ipsets,
		Routes: []ops.Route{
			{Dst: "0.0.0.0/0", Gateway: "10.0.2.2", Iface: "eth0"},
			{Dst: "192.168.2.0/24", Gateway: "10.250.0.254", Iface: "nsl-br0"},
			{Dst: "10.250.0.0/24", Iface: "nsl-br0"},
			{Dst: "10.244.1.0/24", Gateway: "10.250.0.2", Iface: "nsl-br0"},
			{Dst: calicoPodIP + "/32", Iface: calicoPodIface},
			{Dst: "10.244.0.9/32", Iface: "cali99ffee00aa1"},
		}}
	cni := kube.CNI{Name: "calico", Version: "v3.31.0", Calico: &kube.Calico{Pools: []kube.IPPool{
		{Name: "pods-nsl-node1", CIDR: netip.MustParsePrefix("10.244.0.0/24"), NATOutgoing: false},
		{Name: "pods-nsl-node2", CIDR: netip.MustParsePrefix("10.244.1.0/24"), NATOutgoing: true},
	}}}
	return nodenet.NodeFrom("nsl-node1", []string{"10.244.0.0/24"}, facts, cni)
}

const (
	calicoPodIP    = "10.244.0.3"
	calicoPodIface = "cali528411a88f2"
)

func toExternal(src string) nodenet.Path {
	return nodenet.Path{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr("192.168.2.10"), DstNet: "192.168.2.0/24",
		Proto: "tcp", DPort: 80, OffCluster: true, AllowDefault: true}
}

// A pod felix programmed passes felix's FORWARD chains: its profile marks
// it accepted and FORWARD's "Policy explicitly accepted packet" accepts it.
func TestCalicoForwardProgrammedPod(t *testing.T) {
	n := calicoNode(t, "")
	if f, broken := nodenet.Forward(n, toExternal(calicoPodIP)); broken {
		t.Fatalf("a programmed pod is dropped: %s %s", f.RootCause, f.Evidence)
	}
}

// A pod felix never programmed (an interface its dispatch chain does not
// know) is dropped as "Unknown interface": felix is not programming.
func TestCalicoForwardUnknownInterface(t *testing.T) {
	n := calicoNode(t, "")
	f, broken := nodenet.Forward(n, toExternal("10.244.0.9"))
	if !broken || f.ID != nodenet.IDFelixNotProgramming || f.Status != model.StatusFail {
		t.Fatalf("got %v %+v", broken, f)
	}
	for _, want := range []string{"workload interface cali99ffee00aa1", "cali-from-wl-dispatch", "Unknown interface"} {
		if !strings.Contains(f.RootCause+strings.Join(f.Evidence, "\n"), want) {
			t.Errorf("finding does not say %q:\n%s\n%s", want, f.RootCause, strings.Join(f.Evidence, "\n"))
		}
	}
	if !strings.Contains(strings.Join(f.Evidence, "\n"), "walks FORWARD → cali-FORWARD") {
		t.Errorf("evidence does not name felix's chains walked: %s", f.Evidence)
	}
	if !strings.Contains(f.Fixes[0].Commands[0], "k8s-app=calico-node --field-selector spec.nodeName=nsl-node1") {
		t.Errorf("fix %+v", f.Fixes[0])
	}
}

// With its pool's natOutgoing off, felix's cali-nat-outgoing does not
// masquerade the pod (the node's ipsets say so): node.no-masquerade names
// the chain, the ipset and the pool, and the first fix patches the pool.
func TestCalicoMasqueradePoolWithoutNATOutgoing(t *testing.T) {
	n := calicoNode(t, strings.Replace(readFile(t, "testdata/calico-node1.ipset"), "add cali40masq-ipam-pools 10.244.0.0/24\n", "", 1))
	f, broken := nodenet.Masquerade(n, toExternal(calicoPodIP))
	if !broken || f.ID != nodenet.IDNoMasquerade {
		t.Fatalf("got %v %+v", broken, f)
	}
	if !strings.Contains(f.RootCause, "No MASQUERADE or SNAT rule on node nsl-node1 covers pod CIDR 10.244.0.0/24 → 192.168.2.0/24: felix (Calico) masquerades pod traffic in cali-nat-outgoing only for IPPools with natOutgoing, and its IPPool pods-nsl-node1 (10.244.0.0/24) has natOutgoing: false") {
		t.Errorf("root cause %q", f.RootCause)
	}
	ev := strings.Join(f.Evidence, "\n")
	for _, want := range []string{"walks POSTROUTING → KUBE-POSTROUTING → cali-POSTROUTING → cali-fip-snat → cali-nat-outgoing and no MASQUERADE or SNAT rule matches", "cali40masq-ipam-pools holds 10.244.0.3: false", "IPPool pods-nsl-node1"} {
		if !strings.Contains(ev, want) {
			t.Errorf("evidence lacks %q:\n%s", want, ev)
		}
	}
	if got := f.Fixes[0].Commands[0]; got != `kubectl patch ippools.crd.projectcalico.org pods-nsl-node1 --type merge -p '{"spec":{"natOutgoing":true}}'` {
		t.Errorf("first fix %q", got)
	}
	if f.Fixes[0].Node != "" {
		t.Errorf("the pool fix runs where kubectl runs, not on node %s", f.Fixes[0].Node)
	}
	if !strings.Contains(strings.Join(f.Fixes[2].Commands, "\n"), "iptables -t nat -C POSTROUTING -s 10.244.0.0/24 -d 192.168.2.0/24 -j MASQUERADE") || f.Fixes[2].Node != "nsl-node1" {
		t.Errorf("the node rule is no longer offered: %+v", f.Fixes[2])
	}
}

// Healthy: the pod's pool is in felix's masquerade set.
func TestCalicoMasqueradeHealthy(t *testing.T) {
	if f, broken := nodenet.Masquerade(calicoNode(t, ""), toExternal(calicoPodIP)); broken {
		t.Fatalf("a natOutgoing pool reported: %s", f.RootCause)
	}
}

// Without the node's ipsets (no ipset tool on the host) the set matches
// cannot be judged, and netsleuth does not claim a missing NAT.
func TestCalicoMasqueradeWithoutIPSets(t *testing.T) {
	n := calicoNode(t, "")
	n.Facts.IPSets = ""
	if f, broken := nodenet.Masquerade(n, toExternal(calicoPodIP)); broken {
		t.Fatalf("claimed without ipsets: %s", f.RootCause)
	}
}

func TestFelixKnows(t *testing.T) {
	n := calicoNode(t, "")
	if iface, known := nodenet.FelixKnows(n, netip.MustParseAddr(calicoPodIP)); !known || iface != calicoPodIface {
		t.Errorf("programmed pod: %s %v", iface, known)
	}
	if iface, known := nodenet.FelixKnows(n, netip.MustParseAddr("10.244.0.9")); known || iface != "cali99ffee00aa1" {
		t.Errorf("unprogrammed pod: %s %v", iface, known)
	}
	if _, known := nodenet.FelixKnows(n, netip.MustParseAddr("10.244.1.5")); known {
		t.Error("a pod on another node is not a workload interface here")
	}
}

func TestFelixOn(t *testing.T) {
	n := calicoNode(t, "")
	if !n.HasFelixRules() {
		t.Fatal("felix's chains not seen")
	}
	f := nodenet.FelixOn(n, 9099, ops.Result{Outcome: ops.Timeout})
	if f.State != nodenet.FelixStale {
		t.Fatalf("%+v", f)
	}
	fd := nodenet.FelixNotProgramming(f)
	if fd.Key != "node.felix-not-programming|Node/nsl-node1" || !strings.Contains(fd.RootCause, "running but not answering (its health port 9099: timeout)") {
		t.Errorf("finding %s: %s", fd.Key, fd.RootCause)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFelixHealthOpIsValid: the agent takes the health request the policy
// probe sends for felix.
func TestFelixHealthOpIsValid(t *testing.T) {
	for _, port := range []int{9099, 9199} {
		if err := (ops.Request{Ops: []ops.Op{nodenet.FelixHealthOp(port)}}).Validate(); err != nil {
			t.Errorf("port %d: %v", port, err)
		}
	}
}
