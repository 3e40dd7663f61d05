package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Versions of what the lab builds; the build cache is keyed by them.
const (
	kubeVersion    = "v1.36.3"
	corednsVersion = "v1.15.0"
)

// The lab's addressing (CLUSTER.md, "The addressing that worked").
var (
	podCIDR      = netip.MustParsePrefix("10.244.0.0/16")
	serviceCIDR  = netip.MustParsePrefix("10.96.0.0/16")
	nodeNet      = netip.MustParsePrefix("10.250.0.0/24")
	externalNet  = netip.MustParsePrefix("192.168.2.0/24")
	kubeAPIIP    = netip.MustParseAddr("10.96.0.1")
	kubeDNSIP    = netip.MustParseAddr("10.96.0.10")
	routerIP     = netip.MustParseAddr("10.250.0.254")
	routerExtIP  = netip.MustParseAddr("192.168.2.1")
	externalHost = netip.MustParseAddr("192.168.2.10")
	upstreamDNS  = netip.MustParseAddr("10.250.0.53")
	nodeLocalDNS = netip.MustParseAddr("169.254.20.10")
)

// Names of what the lab creates on the machine; all carry the nsl- prefix so
// teardown never has to guess.
const (
	nodeBridge    = "nsl-br0"       // the node network, on the host
	svcSink       = "nsl-svc0"      // port-less bridge the Service CIDR is routed into
	cniBridge     = "nsl-cni0"      // the bridge CNI's bridge on every node
	nodeLocalLink = "nsl-nodelocal" // holds the NodeLocal DNS address on every node
	routerNS      = "nsl-router"
	externalNS    = "nsl-ext"
	upstreamNS    = "nsl-dns"
	guardChain    = "NSL-GUARD"
	natChain      = "NSL-NAT"
	guardComment  = "netsleuth-lab"
	clusterName   = "netsleuth-lab"
	imageRepo     = "netsleuth.local"
	pauseImage    = imageRepo + "/pause:lab"
	labImage      = imageRepo + "/labecho:lab"
	corednsImage  = imageRepo + "/coredns:" + corednsVersion
	agentImage    = imageRepo + "/netsleuth:dev"
)

// node is one lab node: node 1 is the host itself, the others live in
// network namespaces of their own.
type node struct {
	Name  string
	IP    netip.Addr
	NetNS string // "" for the host
}

var nodes = []node{
	{Name: "nsl-node1", IP: netip.MustParseAddr("10.250.0.1")},
	{Name: "nsl-node2", IP: netip.MustParseAddr("10.250.0.2"), NetNS: "nsl-node2"},
}

func findNode(name string) (node, error) {
	for _, n := range nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return node{}, fmt.Errorf("no lab node %q (have nsl-node1, nsl-node2)", name)
}

// paths are where the lab keeps its files.
type paths struct {
	Root  string // the repository root
	Lab   string // <root>/.lab: kubeconfig, PKI, logs, state and node data
	Run   string // /run/netsleuth-lab: sockets (short paths for unix sockets)
	Cache string // <user cache>/netsleuth-lab: built binaries and images by version
}

func newPaths() (paths, error) {
	root, err := repoRoot()
	if err != nil {
		return paths{}, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return paths{}, fmt.Errorf("find the user cache dir: %w", err)
	}
	return paths{
		Root:  root,
		Lab:   filepath.Join(root, ".lab"),
		Run:   "/run/netsleuth-lab",
		Cache: filepath.Join(cache, "netsleuth-lab", runtime.Version()),
	}, nil
}

func (p paths) Kubeconfig() string      { return filepath.Join(p.Lab, "kubeconfig") }
func (p paths) PKI(name string) string  { return filepath.Join(p.Lab, "pki", name) }
func (p paths) Log(name string) string  { return filepath.Join(p.Lab, "logs", name+".log") }
func (p paths) PID(name string) string  { return filepath.Join(p.Lab, "pids", name+".pid") }
func (p paths) Node(n, f string) string { return filepath.Join(p.Lab, "nodes", n, f) }
func (p paths) Socket(n string) string  { return filepath.Join(p.Run, n, "containerd.sock") }
func (p paths) Bin(name string) string  { return filepath.Join(p.Cache, "bin", name) }
func (p paths) State() string           { return filepath.Join(p.Lab, "state.json") }

// repoRoot walks up from the working directory to the directory holding the
// netsleuth go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/netsleuth/netsleuth\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run hack/lab from inside the netsleuth repository")
		}
		dir = parent
	}
}
