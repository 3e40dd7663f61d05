// Package runtime is the container runtime probe (scenario E): it reports
// each node's runtime and kubelet version, flags Docker nodes that depend on
// dockershim or cri-dockerd, and finds every workload that mounts a runtime
// socket through a hostPath volume.
package runtime

import (
	"context"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// ID is the probe's identifier for --probe.
const ID = "runtime"

type probe struct{}

// New returns the runtime probe.
func New() probes.Probe { return probe{} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID:       ID,
		Title:    "Container runtime and runtime sockets",
		Scenario: "E",
		Description: "Reads each node's container runtime and kubelet version, warns about Docker nodes " +
			"(dockershim before 1.24, cri-dockerd after) with migration steps, and lists every workload " +
			"that mounts a Docker, containerd or CRI-O socket through hostPath: broken when the node " +
			"does not run Docker, root on the node in every case.",
		RBAC:    model.MergePermissions(kube.RBACNodes, kube.RBACPods, kube.RBACWorkloads),
		Default: true,
	}
}

func (probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("listing nodes")
	nodes, err := env.Snap().Nodes(ctx)
	if err != nil {
		return err
	}
	in := Input{Namespace: env.Namespace}
	for _, n := range nodes {
		in.Nodes = append(in.Nodes, Node{Name: n.Name, RuntimeVersion: n.Status.NodeInfo.ContainerRuntimeVersion, KubeletVersion: n.Status.NodeInfo.KubeletVersion})
	}
	rec.Stage("listing pods")
	pods, err := env.Snap().Pods(ctx, env.Namespace)
	if err != nil {
		return err
	}
	resolver := kube.NewWorkloadResolver(env.Kube)
	staged := false
	for i := range pods {
		mounts := SocketMounts(&pods[i], catalogue())
		if len(mounts) == 0 {
			continue
		}
		if !staged {
			rec.Stage("resolving owners of pods that mount runtime sockets")
			staged = true
		}
		in.Pods = append(in.Pods, PodMounts{Workload: resolver.Resolve(ctx, &pods[i]), Mounts: mounts})
	}
	for _, f := range Analyze(in) {
		rec.Finding(f)
	}
	return nil
}
