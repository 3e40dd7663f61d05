package runtime

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// Finding IDs of this probe; they are a stable contract for scripts.
const (
	IDNode              = "runtime.node"
	IDUnknown           = "runtime.unknown"
	IDCRIDockerd        = "runtime.cri-dockerd"
	IDDockershim        = "runtime.dockershim"
	IDDockerSocketMount = "runtime.docker-socket-mount"
	IDSocketMount       = "runtime.socket-mount"
	IDNoSocketMounts    = "runtime.no-socket-mounts"
)

// dockershimRemoved is the first kubelet release without dockershim.
var dockershimRemoved = version.MustParseGeneric("1.24.0")

const (
	refFindRuntime  = "https://kubernetes.io/docs/tasks/administer-cluster/migrating-from-dockershim/find-out-runtime-you-use/"
	refMigrate      = "https://kubernetes.io/docs/tasks/administer-cluster/migrating-from-dockershim/"
	refToContainerd = "https://kubernetes.io/docs/tasks/administer-cluster/migrating-from-dockershim/change-runtime-containerd/"
	refAgents       = "https://kubernetes.io/docs/tasks/administer-cluster/migrating-from-dockershim/migrating-telemetry-and-security-agents/"
	refCheckDeps    = "https://kubernetes.io/docs/tasks/administer-cluster/migrating-from-dockershim/check-if-dockershim-removal-affects-you/"
	refHostPath     = "https://kubernetes.io/docs/concepts/storage/volumes/#hostpath"
	refPSS          = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"
	refRuntimes     = "https://kubernetes.io/docs/setup/production-environment/container-runtimes/"
)

// Node is what the probe reads from one node's status.
type Node struct {
	Name string
	// RuntimeVersion is status.nodeInfo.containerRuntimeVersion, e.g. containerd://1.7.2.
	RuntimeVersion string
	// KubeletVersion is status.nodeInfo.kubeletVersion, e.g. v1.36.3.
	KubeletVersion string
}

// PodMounts is one pod's runtime socket mounts and the workload owning it.
type PodMounts struct {
	Workload kube.Workload
	Mounts   []SocketMount
}

// Input is everything Analyze reasons about.
type Input struct {
	Nodes []Node
	Pods  []PodMounts
	// Namespace is the namespace the pods were listed in, "" for all.
	Namespace string
}

// ParseRuntime splits containerd://1.7.2 into ("containerd", "1.7.2").
func ParseRuntime(v string) (name, ver string) {
	name, ver, ok := strings.Cut(v, "://")
	if !ok {
		return "", v
	}
	return name, ver
}

// Analyze turns the nodes' runtimes and the pods' socket mounts into findings.
func Analyze(in Input) []model.Finding {
	var out []model.Finding
	runtimeOf := map[string]string{}
	for _, n := range in.Nodes {
		name, _ := ParseRuntime(n.RuntimeVersion)
		runtimeOf[n.Name] = name
		out = append(out, nodeFinding(n))
	}
	groups := groupByWorkload(in.Pods)
	for _, g := range groups {
		out = append(out, workloadFinding(g, runtimeOf))
	}
	if len(groups) == 0 {
		subj := &model.Subject{Kind: "Cluster"}
		scope := "all namespaces"
		if in.Namespace != "" {
			subj = &model.Subject{Kind: "Namespace", Name: in.Namespace}
			scope = "namespace " + in.Namespace
		}
		out = append(out, model.Finding{
			ID: IDNoSocketMounts, Status: model.StatusPass, Subject: subj,
			Title:    "no pod mounts a container runtime socket",
			Evidence: []string{fmt.Sprintf("checked the hostPath volumes of every pod in %s against %d runtime socket paths", scope, len(catalogue().Sockets))},
		})
	}
	for i := range out {
		out[i].Probe = ID
	}
	kube.SortFindings(out)
	return out
}

func nodeFinding(n Node) model.Finding {
	name, ver := ParseRuntime(n.RuntimeVersion)
	f := model.Finding{
		ID: IDNode, Status: model.StatusPass, Subject: &model.Subject{Kind: "Node", Name: n.Name},
		Evidence:   []string{fmt.Sprintf("node %s: containerRuntimeVersion=%s, kubelet %s", n.Name, orNone(n.RuntimeVersion), orNone(n.KubeletVersion))},
		References: []string{refFindRuntime},
	}
	switch name {
	case "containerd", "cri-o":
		f.Title = fmt.Sprintf("node %s runs %s %s through CRI", n.Name, name, ver)
		return f
	case "docker":
		return dockerNodeFinding(f, n, ver)
	}
	f.ID, f.Status = IDUnknown, model.StatusSkip
	if n.RuntimeVersion == "" {
		f.Title = fmt.Sprintf("node %s reports no container runtime (kubelet has not posted node status)", n.Name)
	} else {
		f.Title = fmt.Sprintf("node %s runs runtime %q, which netsleuth does not classify", n.Name, n.RuntimeVersion)
	}
	return f
}

func dockerNodeFinding(f model.Finding, n Node, ver string) model.Finding {
	f.Status = model.StatusWarn
	f.References = append(f.References, refMigrate, refToContainerd, refCheckDeps, refAgents)
	f.Fixes = migrationFixes(n.Name)
	kv, err := version.ParseGeneric(n.KubeletVersion)
	if err == nil && !kv.AtLeast(dockershimRemoved) {
		f.ID = IDDockershim
		f.Title = fmt.Sprintf("node %s runs Docker %s through dockershim", n.Name, ver)
		f.RootCause = fmt.Sprintf("node %s runs kubelet %s with Docker Engine %s through the built-in dockershim, which was removed in kubelet 1.24, so upgrading this node's kubelet to 1.24 or later leaves it unable to run pods unless it is migrated first.", n.Name, n.KubeletVersion, ver)
		return f
	}
	f.ID = IDCRIDockerd
	f.Title = fmt.Sprintf("node %s runs Docker %s through cri-dockerd", n.Name, ver)
	f.RootCause = fmt.Sprintf("node %s runs kubelet %s with Docker Engine %s; dockershim was removed in kubelet 1.24, so this node depends on the external cri-dockerd adapter, an extra component outside Kubernetes releases that must be installed, upgraded and kept compatible separately.", n.Name, orNone(n.KubeletVersion), ver)
	if err != nil {
		f.Evidence = append(f.Evidence, fmt.Sprintf("kubelet version %q not parseable (%v); assuming 1.24 or later", n.KubeletVersion, err))
	}
	return f
}

func migrationFixes(node string) []model.Fix {
	return []model.Fix{
		{
			Description: "Before migrating, find what depends on Docker: pods mounting /var/run/docker.sock (see runtime.docker-socket-mount findings), node agents or scripts calling `docker`, and registry mirrors or credentials in /etc/docker/daemon.json, which containerd does not read.",
			Commands: []string{
				`kubectl get pods -A -o=jsonpath='{range .items[*]}{"\n"}{.metadata.namespace}{":\t"}{.metadata.name}{":\t"}{range .spec.volumes[*]}{.hostPath.path}{", "}{end}{end}' | sort | grep '/var/run/docker.sock'`,
				"# on the node: grep -rl 'docker ' /etc/systemd /etc/cron* /usr/local/bin 2>/dev/null; cat /etc/docker/daemon.json",
			},
		},
		{
			Description: "Migrate the node to containerd (or CRI-O) one node at a time: drain, switch the kubelet's runtime endpoint, uncordon.",
			Commands: []string{
				fmt.Sprintf("kubectl drain %s --ignore-daemonsets --delete-emptydir-data", node),
				"# on the node:",
				"sudo systemctl stop kubelet && sudo systemctl disable --now docker.service docker.socket cri-docker.service cri-docker.socket",
				"sudo apt-get install -y containerd   # or dnf install containerd.io",
				"containerd config default | sudo tee /etc/containerd/config.toml && sudo sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml && sudo systemctl restart containerd",
				"sudo sed -i 's#--container-runtime-endpoint=[^ \"]*#--container-runtime-endpoint=unix:///run/containerd/containerd.sock#' /var/lib/kubelet/kubeadm-flags.env",
				"sudo systemctl start kubelet",
				fmt.Sprintf("kubectl annotate node %s --overwrite kubeadm.alpha.kubernetes.io/cri-socket=unix:///run/containerd/containerd.sock", node),
				fmt.Sprintf("kubectl uncordon %s", node),
			},
		},
	}
}

// workloadGroup gathers the socket mounts of every pod of one workload.
type workloadGroup struct {
	w      kube.Workload
	pods   []string
	nodes  []string
	mounts []SocketMount // one per container+hostPath
}

func groupByWorkload(pods []PodMounts) []*workloadGroup {
	byKey := map[string]*workloadGroup{}
	var keys []string
	for _, p := range pods {
		if len(p.Mounts) == 0 {
			continue
		}
		k := p.Workload.String()
		g, ok := byKey[k]
		if !ok {
			g = &workloadGroup{w: p.Workload}
			byKey[k] = g
			keys = append(keys, k)
		}
		g.pods = appendUnique(g.pods, p.Mounts[0].Pod)
		if n := p.Mounts[0].Node; n != "" {
			g.nodes = appendUnique(g.nodes, n)
		}
		for _, m := range p.Mounts {
			if !hasMount(g.mounts, m) {
				g.mounts = append(g.mounts, m)
			}
		}
	}
	sort.Strings(keys)
	out := make([]*workloadGroup, 0, len(keys))
	for _, k := range keys {
		g := byKey[k]
		sort.Strings(g.pods)
		sort.Strings(g.nodes)
		out = append(out, g)
	}
	return out
}

func hasMount(ms []SocketMount, m SocketMount) bool {
	for _, x := range ms {
		if x.Container == m.Container && x.HostPath == m.HostPath {
			return true
		}
	}
	return false
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
