package runtime

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/netsleuth/netsleuth/assets"
	"github.com/netsleuth/netsleuth/model"
)

var catalogue = sync.OnceValue(assets.MustRuntimeSockets)

// workloadFinding judges one workload's socket mounts: a Docker socket on
// nodes that do not run Docker is broken (fail); any other runtime socket is
// root-equivalent access to the node (warn).
func workloadFinding(g *workloadGroup, runtimeOf map[string]string) model.Finding {
	w := g.w
	f := model.Finding{
		ID: IDSocketMount, Status: model.StatusWarn,
		Subject:    &model.Subject{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name},
		References: []string{refHostPath, refPSS, refAgents},
	}
	for _, m := range g.mounts {
		var names []string
		for _, s := range m.Sockets {
			names = append(names, s.Path+" ("+s.Runtime+")")
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("pod %s/%s container %s: hostPath %s (volume %s) exposes %s",
			m.Namespace, m.Pod, m.Container, m.HostPath, m.Volume, strings.Join(names, ", ")))
	}
	if w.Inferred {
		f.Evidence = append(f.Evidence, fmt.Sprintf("owner %s derived from the pod-template-hash suffix: the ReplicaSet could not be read", w))
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%d pod(s): %s; on node(s): %s", len(g.pods), strings.Join(g.pods, ", "), orNone(strings.Join(g.nodes, ", "))))

	first := g.mounts[0]
	var moveOff []model.Fix
	if dm, broken := brokenDockerMount(g, runtimeOf); broken != nil {
		first = dm
		for _, n := range broken {
			f.Evidence = append(f.Evidence, fmt.Sprintf("node %s runs %s, not Docker", n, orNone(runtimeOf[n])))
		}
		f.ID, f.Status = IDDockerSocketMount, model.StatusFail
		f.Title = fmt.Sprintf("%s mounts the Docker socket but its nodes do not run Docker", w)
		f.RootCause = fmt.Sprintf("%s mounts hostPath %s into container %s, but node(s) %s run %s, not Docker, so no Docker daemon answers there: with hostPath type Socket the pod cannot start, otherwise every Docker API call from the container fails.",
			w, dm.HostPath, dm.Container, strings.Join(broken, ", "), orNone(runtimeOf[broken[0]]))
		f.References = append(f.References, refMigrate, refCheckDeps)
		moveOff = append(moveOff, model.Fix{
			Description: "Move the tool off the Docker API: use the CRI socket of the node's runtime (crictl, CRI-aware agent versions) or the Kubernetes API; pinning the workload to Docker nodes with a nodeSelector is only a stopgap until those nodes are migrated.",
			Commands:    []string{"# on a node: sudo crictl --runtime-endpoint unix:///run/containerd/containerd.sock ps"},
		})
	} else {
		f.Title = fmt.Sprintf("%s mounts a container runtime socket (%s)", w, strings.Join(runtimes(first.Sockets), ", "))
		f.RootCause = fmt.Sprintf("%s mounts hostPath %s into container %s, exposing the %s runtime API, which has no authorization: anyone who can run code in that container can start privileged containers and so is root on node(s) %s.",
			w, first.HostPath, first.Container, strings.Join(runtimes(first.Sockets), "/"), orNone(strings.Join(g.nodes, ", ")))
	}
	// Removing the mount mends the finding; moving the tool off the Docker API
	// is what makes the removal safe.
	f.Fixes = append(append(f.Fixes, removeMountFixes(w.Kind, w.Namespace, w.Name, g.mounts)...), moveOff...)
	return f
}

// brokenDockerMount returns a direct Docker socket mount and the nodes of the
// workload (all known nodes if it has no scheduled pods) that do not run
// Docker, or nil if every such node runs Docker.
func brokenDockerMount(g *workloadGroup, runtimeOf map[string]string) (SocketMount, []string) {
	var dm *SocketMount
	for i := range g.mounts {
		if g.mounts[i].DirectRuntime == "docker" {
			dm = &g.mounts[i]
			break
		}
	}
	if dm == nil {
		return SocketMount{}, nil
	}
	nodes := g.nodes
	if len(nodes) == 0 {
		for n := range runtimeOf {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
	}
	var broken []string
	for _, n := range nodes {
		if rt, known := runtimeOf[n]; known && rt != "docker" {
			broken = append(broken, n)
		}
	}
	return *dm, broken
}

func removeMountFixes(kind, ns, name string, mounts []SocketMount) []model.Fix {
	var what []string
	for _, m := range mounts {
		what = append(what, fmt.Sprintf("volume %q (hostPath %s) and its volumeMount in container %s", m.Volume, m.HostPath, m.Container))
	}
	edit := fmt.Sprintf("kubectl -n %s edit %s/%s", ns, strings.ToLower(kind), name)
	if kind == "Pod" {
		edit = fmt.Sprintf("kubectl -n %s get pod %s -o yaml > %s.yaml   # remove the volume, then: kubectl replace --force -f %s.yaml", ns, name, name, name)
	}
	remove := model.Fix{
		Description: "Remove the runtime socket mount: delete " + strings.Join(what, "; ") + ". Inspect containers with crictl on the node or kubectl logs/exec/debug, and build images without a daemon (rootless BuildKit, kaniko) instead.",
		Commands:    []string{edit},
	}
	if kind != "Pod" {
		// A strategic merge patch deletes list items by their merge key, so
		// applying it twice changes nothing the second time.
		remove.Commands = []string{fmt.Sprintf("kubectl -n %s patch %s %s --type strategic -p '%s'", ns, strings.ToLower(kind), name, deleteMountsPatch(mounts))}
	}
	return []model.Fix{
		remove,
		{
			Description: "Stop new hostPath mounts in this namespace: the Pod Security Standard \"baseline\" forbids hostPath volumes. Run the dry run first; it lists the pods that would violate it.",
			Commands: []string{
				fmt.Sprintf("kubectl label --dry-run=server --overwrite namespace %s pod-security.kubernetes.io/enforce=baseline", ns),
				fmt.Sprintf("kubectl label --overwrite namespace %s pod-security.kubernetes.io/enforce=baseline", ns),
			},
		},
	}
}

// deleteMountsPatch is the strategic merge patch that deletes the socket
// volumes from a workload's pod template and their mounts from its containers.
func deleteMountsPatch(mounts []SocketMount) string {
	type del = map[string]any
	var vols []del
	byCtr := map[string][]del{}
	var ctrs []string
	for _, m := range mounts {
		if !slices.ContainsFunc(vols, func(v del) bool { return v["name"] == m.Volume }) {
			vols = append(vols, del{"name": m.Volume, "$patch": "delete"})
		}
		if _, ok := byCtr[m.Container]; !ok {
			ctrs = append(ctrs, m.Container)
		}
		byCtr[m.Container] = append(byCtr[m.Container], del{"mountPath": m.MountPath, "$patch": "delete"})
	}
	var cs []del
	for _, c := range ctrs {
		cs = append(cs, del{"name": c, "volumeMounts": byCtr[c]})
	}
	b, _ := json.Marshal(del{"spec": del{"template": del{"spec": del{"volumes": vols, "containers": cs}}}})
	return string(b)
}
