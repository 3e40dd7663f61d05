package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// The calico profile (CLUSTER.md, "A second CNI profile: Calico"): Calico's
// own CNI plugin attaches the pods (routed /32s on cali* interfaces,
// host-local IPAM on the node's pod CIDR) and felix, one per node in the
// node's network namespace, enforces NetworkPolicy with its iptables
// dataplane against the Kubernetes datastore, without Typha. One IPPool per
// node (its pod CIDR, selected by hostname) with natOutgoing does the source
// NAT the bridge profile's NSL-NAT rule does, so the snat fault stays a
// fault of one node.
const (
	profileBridge = "bridge"
	profileCalico = "calico"

	calicoVersion = "v3.31.0"
	calicoModule  = "github.com/projectcalico/calico"
	calicoGroup   = "/apis/crd.projectcalico.org/v1/"
	// calicoGateway is the pods' default gateway: no node has it, each
	// answers for it by proxy ARP on its cali* interfaces.
	calicoGateway = "169.254.1.1"
)

// felixHealthPort is each node's felix health port on the node's loopback,
// declared in its per-node FelixConfiguration (node.<name>) as a real
// cluster would, so netsleuth reads it from the cluster.
func felixHealthPort(n node) int {
	for i, m := range nodes {
		if m.Name == n.Name {
			return 9099 + 100*i
		}
	}
	return 9099
}

func (l *lab) calico() bool { return l.s.CNI == profileCalico }

// profile is the running (or requested) profile's name.
func (l *lab) profile() string {
	if l.s.CNI == "" {
		return profileBridge
	}
	return l.s.CNI
}

func checkProfile(p string) error {
	switch p {
	case "", profileBridge, profileCalico:
		return nil
	}
	return usageError{fmt.Sprintf("--cni %q: the lab has the profiles bridge (the default) and calico", p)}
}

func (l *lab) calicoBin(name string) string {
	return filepath.Join(l.p.Cache, "calico-"+calicoVersion, name)
}

// buildCalico builds felix and Calico's CNI plugin (CGO_ENABLED=0, cached
// by version) from hack/calico.
func (l *lab) buildCalico(ctx context.Context) error {
	ld := "-s -w -X github.com/projectcalico/calico/pkg/buildinfo.Version=" + calicoVersion
	mod := filepath.Join(l.p.Root, "hack", "calico")
	if err := l.cachedBuild(ctx, mod, calicoModule+"/felix/cmd/calico-felix", l.calicoBin("calico-felix"), "", ld); err != nil {
		return err
	}
	return l.cachedBuild(ctx, mod, calicoModule+"/cni-plugin/cmd/calico", l.calicoBin("calico"), "", ld)
}

// cniBinDir is containerd's CNI plugin directory: the Debian plugins, plus
// Calico's in the calico profile (links, so /usr/lib/cni stays untouched).
func (l *lab) cniBinDir() string {
	if !l.calico() {
		return "/usr/lib/cni"
	}
	return filepath.Join(l.p.Lab, "cni-bin")
}

func (l *lab) prepareCNIBin() error {
	dir := l.cniBinDir()
	if !l.calico() {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	plugins, err := os.ReadDir("/usr/lib/cni")
	if err != nil {
		return err
	}
	links := map[string]string{"calico": l.calicoBin("calico")}
	for _, p := range plugins {
		links[p.Name()] = filepath.Join("/usr/lib/cni", p.Name())
	}
	for name, target := range links {
		path := filepath.Join(dir, name)
		_ = os.Remove(path)
		if err := os.Symlink(target, path); err != nil {
			return err
		}
	}
	return nil
}

// calicoCNIConfig is one node's CNI chain: Calico's plugin with host-local
// IPAM on the node's pod CIDR, and portmap.
func (l *lab) calicoCNIConfig(n node) ([]byte, error) {
	nameFile := l.p.Node(n.Name, "calico-nodename")
	if err := os.WriteFile(nameFile, []byte(n.Name), 0o644); err != nil {
		return nil, err
	}
	conf := map[string]any{
		"cniVersion": "0.3.1",
		"name":       "netsleuth-lab",
		"plugins": []any{
			map[string]any{
				"type": "calico", "datastore_type": "kubernetes", "nodename_file": nameFile, "mtu": 1500,
				"log_level": "info", "log_file_path": l.p.Log("calico-cni-" + n.Name),
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": "usePodCidr"}}},
					"dataDir": l.p.Node(n.Name, "cni-ipam"),
				},
				"policy":     map[string]string{"type": "k8s"},
				"kubernetes": map[string]string{"kubeconfig": l.p.Kubeconfig()},
			},
			map[string]any{"type": "portmap", "snat": true, "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// felixProc is felix on node n, inside the node's network namespace.
func (l *lab) felixProc(n node) proc {
	return proc{Name: "felix-" + n.Name, NetNS: n.NetNS, Args: []string{l.calicoBin("calico-felix")}, Env: []string{
		"KUBECONFIG=" + l.p.Kubeconfig(),
		"FELIX_DATASTORETYPE=kubernetes",
		"FELIX_FELIXHOSTNAME=" + n.Name,
		"FELIX_IPTABLESBACKEND=NFT",
		"FELIX_BPFENABLED=false",
		"FELIX_XDPENABLED=false",
		"FELIX_USAGEREPORTINGENABLED=false",
		"FELIX_INTERFACEPREFIX=cali",
		"FELIX_IPV6SUPPORT=false",
		"FELIX_IPINIPENABLED=false",
		"FELIX_VXLANENABLED=false",
		"FELIX_WIREGUARDENABLED=false",
		"FELIX_DEFAULTENDPOINTTOHOSTACTION=ACCEPT",
		"FELIX_HEALTHENABLED=true",
		"FELIX_HEALTHHOST=127.0.0.1",
		// The same port its FelixConfiguration node.<name> declares (where
		// netsleuth reads it); the environment wins over the datastore.
		fmt.Sprintf("FELIX_HEALTHPORT=%d", felixHealthPort(n)),
		"FELIX_LOGFILEPATH=none",
		"FELIX_LOGSEVERITYSCREEN=info",
		"FELIX_ENDPOINTSTATUSPATHPREFIX=" + l.p.Node(n.Name, "calico-status"),
		// The cgo-free felix panics in the connect-time load balancer's
		// cleanup ("LIBBPF syscall stub"); there is none to clean up.
		"FELIX_DebugSkipCTLBCleanup=true",
	}}
}

// felixReady polls felix's readiness endpoint on n's loopback.
func (l *lab) felixReady(n node) func(context.Context) (bool, error) {
	url := fmt.Sprintf("http://127.0.0.1:%d/readiness", felixHealthPort(n))
	return func(ctx context.Context) (bool, error) {
		_, err := inNS(ctx, n.NetNS, "timeout", "2", "busybox", "wget", "-q", "-O", "/dev/null", url)
		return err == nil, err
	}
}

// waitFelix waits until felix is ready on every node.
func (l *lab) waitFelix(ctx context.Context) error {
	for _, n := range nodes {
		if err := waitFor(ctx, "felix ready on "+n.Name, 90*time.Second, l.felixReady(n)); err != nil {
			return err
		}
	}
	return nil
}

// calicoModuleDir is the calico module in the Go module cache (downloaded
// if missing): the CRDs are read from there, never copied into the repo.
func (l *lab) calicoModuleDir(ctx context.Context) (string, error) {
	out, err := runIn(ctx, filepath.Join(l.p.Root, "hack", "calico"), "go", "mod", "download", "-json", calicoModule)
	if err != nil {
		return "", err
	}
	var m struct{ Dir string }
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no module directory in %q", calicoModule, out)
	}
	return m.Dir, nil
}

// setupCalicoDatastore applies Calico's CRDs (server-side: they are too big
// for client-side apply) and the objects calico-node and kube-controllers
// would otherwise make: ClusterInformation, the tiers, FelixConfigurations
// (the IPPools come once the nodes have their pod CIDRs: setupCalicoPools).
func (l *lab) setupCalicoDatastore(ctx context.Context) error {
	if !l.calico() {
		return nil
	}
	step("applying Calico %s's CRDs and cluster objects", calicoVersion)
	dir, err := l.calicoModuleDir(ctx)
	if err != nil {
		return err
	}
	crds, err := filepath.Glob(filepath.Join(dir, "libcalico-go", "config", "crd", "*.yaml"))
	if err != nil || len(crds) == 0 {
		return fmt.Errorf("no CRDs in %s/libcalico-go/config/crd (%v)", dir, err)
	}
	cs, err := l.client()
	if err != nil {
		return err
	}
	for _, f := range crds {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var meta struct {
			Metadata struct{ Name string } `json:"metadata"`
		}
		if err := yaml.Unmarshal(b, &meta); err != nil || meta.Metadata.Name == "" {
			return fmt.Errorf("read CRD %s: %v", f, err)
		}
		if err := serverApply(ctx, cs, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"+meta.Metadata.Name, b); err != nil {
			return fmt.Errorf("apply CRD %s: %w", meta.Metadata.Name, err)
		}
	}
	if err := waitFor(ctx, "Calico CRDs served", 60*time.Second, func(ctx context.Context) (bool, error) {
		for _, r := range []string{"clusterinformations", "tiers", "felixconfigurations", "ippools"} {
			if _, err := cs.Discovery().RESTClient().Get().AbsPath(calicoGroup + r).DoRaw(ctx); err != nil {
				return false, err
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	for _, o := range l.calicoObjects() {
		if err := applyCalico(ctx, cs, o); err != nil {
			return err
		}
	}
	return nil
}

// calicoObject is one crd.projectcalico.org/v1 object.
type calicoObject struct {
	Resource, Kind, Name string
	Spec                 map[string]any
}

func (l *lab) calicoObjects() []calicoObject {
	tier := func(name string, order float64, action string) calicoObject {
		return calicoObject{"tiers", "Tier", name, map[string]any{"order": order, "defaultAction": action}}
	}
	objs := []calicoObject{
		{"clusterinformations", "ClusterInformation", "default", map[string]any{
			"datastoreReady": true, "calicoVersion": calicoVersion, "clusterType": "k8s"}},
		tier("kube-admin", 1_000, "Pass"),
		tier("default", 1_000_000, "Deny"),
		tier("kube-baseline", 10_000_000, "Pass"),
		{"felixconfigurations", "FelixConfiguration", "default", map[string]any{
			"usageReportingEnabled": false, "bpfEnabled": false, "logSeverityScreen": "Info"}},
	}
	for _, n := range nodes {
		objs = append(objs, calicoObject{"felixconfigurations", "FelixConfiguration", "node." + n.Name,
			map[string]any{"healthPort": felixHealthPort(n)}})
	}
	return objs
}

// nodePool is node n's IPPool: its pod CIDR, no encapsulation, and
// natOutgoing (felix's cali-nat-outgoing) unless the snat fault is on.
func nodePool(n node, cidr netip.Prefix, natOutgoing bool) calicoObject {
	return calicoObject{"ippools", "IPPool", "pods-" + n.Name, map[string]any{
		"cidr": cidr.String(), "natOutgoing": natOutgoing, "ipipMode": "Never", "vxlanMode": "Never",
		"blockSize": 26, "nodeSelector": fmt.Sprintf("kubernetes.io/hostname == '%s'", n.Name)}}
}

// setupCalicoPools makes every node's IPPool with natOutgoing on.
func (l *lab) setupCalicoPools(ctx context.Context, cidrs map[string]netip.Prefix) error {
	cs, err := l.client()
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if err := applyCalico(ctx, cs, nodePool(n, cidrs[n.Name], true)); err != nil {
			return err
		}
	}
	return nil
}

func applyCalico(ctx context.Context, cs kubernetes.Interface, o calicoObject) error {
	doc, err := json.Marshal(map[string]any{
		"apiVersion": "crd.projectcalico.org/v1", "kind": o.Kind,
		"metadata": map[string]string{"name": o.Name}, "spec": o.Spec,
	})
	if err != nil {
		return err
	}
	if err := serverApply(ctx, cs, calicoGroup+o.Resource+"/"+o.Name, doc); err != nil {
		return fmt.Errorf("apply %s %s: %w", o.Kind, o.Name, err)
	}
	return nil
}

// serverApply server-side applies doc (YAML or JSON) at path.
func serverApply(ctx context.Context, cs kubernetes.Interface, path string, doc []byte) error {
	_, err := cs.Discovery().RESTClient().Patch("application/apply-patch+yaml").AbsPath(path).
		Param("fieldManager", "netsleuth-lab").Param("force", "true").Body(doc).DoRaw(ctx)
	return err
}

// setNATOutgoing switches natOutgoing of node n's pool (the snat fault in
// Calico's terms) and waits until felix on n has applied it to its ipset of
// pools to masquerade.
func (l *lab) setNATOutgoing(ctx context.Context, n node, on bool) error {
	cs, err := l.client()
	if err != nil {
		return err
	}
	cidrs, err := podCIDRs(ctx, cs)
	if err != nil {
		return err
	}
	cidr := cidrs[n.Name]
	if err := applyCalico(ctx, cs, nodePool(n, cidr, on)); err != nil {
		return err
	}
	what := fmt.Sprintf("felix on %s applies natOutgoing=%v to %s", n.Name, on, cidr)
	return waitFor(ctx, what, 30*time.Second, func(ctx context.Context) (bool, error) {
		out, err := inNS(ctx, n.NetNS, "ipset", "list", masqSet)
		return err == nil && setHas(out, cidr.String()) == on, err
	})
}

// masqSet is felix's ipset of the pools whose traffic it masquerades.
const masqSet = "cali40masq-ipam-pools"

// setHas reports whether `ipset list` output has member m.
func setHas(list, m string) bool {
	members := false
	for _, line := range strings.Split(list, "\n") {
		line = strings.TrimSpace(line)
		if line == "Members:" {
			members = true
			continue
		}
		if f := strings.Fields(line); members && len(f) > 0 && f[0] == m {
			return true
		}
	}
	return false
}

// removeFelixState removes what felix leaves behind in namespace ns when
// it stops: its chains, its rules in the built-in chains and its ipsets.
func removeFelixState(ctx context.Context, ns string) error {
	out, err := inNS(ctx, ns, "iptables-save")
	if err != nil {
		return err
	}
	for table, body := range felixFreeTables(out) {
		if err := restoreTable(ctx, ns, table, body); err != nil {
			return err
		}
	}
	return destroyIPSets(ctx, ns)
}

// felixFreeTables is filterTables for felix's chains and rules only.
func felixFreeTables(save string) map[string]string {
	return filterTablesBy(save, isFelix)
}

func isFelix(line string) bool {
	f := strings.Fields(line)
	switch {
	case len(f) == 0:
		return false
	case strings.HasPrefix(f[0], ":"):
		return strings.HasPrefix(f[0], ":cali-")
	case f[0] != "-A" || len(f) < 2:
		return false
	}
	return strings.HasPrefix(f[1], "cali-") || strings.Contains(line, "--comment cali:") || strings.Contains(line, `--comment "cali:`) || jumpsTo(f, "cali-")
}

func jumpsTo(f []string, prefix string) bool {
	for i := 2; i+1 < len(f); i++ {
		if (f[i] == "-j" || f[i] == "-g") && strings.HasPrefix(f[i+1], prefix) {
			return true
		}
	}
	return false
}

// calicoIPSets lists felix's ipsets in namespace ns.
func calicoIPSets(ctx context.Context, ns string) []string {
	out, err := inNS(ctx, ns, "ipset", "list", "-n")
	if err != nil {
		return nil
	}
	var sets []string
	for _, s := range strings.Fields(out) {
		if strings.HasPrefix(s, "cali") {
			sets = append(sets, s)
		}
	}
	return sets
}

func destroyIPSets(ctx context.Context, ns string) error {
	for _, s := range calicoIPSets(ctx, ns) {
		if _, err := inNS(ctx, ns, "ipset", "destroy", s); err != nil {
			return err
		}
	}
	return nil
}
