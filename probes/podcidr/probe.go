// Package podcidr is the pod CIDR capacity probe (scenario H): it checks each
// node's podCIDR against its maxPods with the sizing table in assets, each
// node's pod count against maxPods, and how many more nodes the cluster CIDR
// can hold at the node mask size.
package podcidr

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/netsleuth/netsleuth/assets"
	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// ID is the probe's identifier for --probe.
const ID = "podcidr"

var table = sync.OnceValue(assets.MustPodCIDRTable)

type probe struct {
	// configz reads a node's kubelet configuration; tests replace it.
	configz func(ctx context.Context, env *probes.Env, node string) (int32, error)
}

// New returns the podcidr probe.
func New() probes.Probe { return probe{configz: readMaxPods} }

func readMaxPods(ctx context.Context, env *probes.Env, node string) (int32, error) {
	cfg, err := env.Snap().KubeletConfig(ctx, node)
	if err != nil {
		return 0, err
	}
	return cfg.MaxPods, nil
}

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID:       ID,
		Title:    "Pod CIDR capacity",
		Scenario: "H",
		Description: "Checks each node's podCIDR size against its maxPods (≤32 → /26, 33–64 → /25, " +
			"65–128 → /24, 129–250 → /23), each node's pod count against maxPods, and how many more " +
			"nodes the cluster CIDR holds at the node mask size; warns at 80 % of a limit.",
		RBAC:    model.MergePermissions(kube.RBACNodes, kube.RBACPods, kube.RBACConfigz, kube.RBACClusterNetwork),
		Default: true,
	}
}

func (p probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("listing nodes")
	nodes, err := env.Snap().Nodes(ctx)
	if err != nil {
		return err
	}
	rec.Stage("listing pods to count them per node")
	pods, err := env.Snap().AllPods(ctx)
	if err != nil {
		return err
	}
	active, podNet := map[string]int{}, map[string]int{}
	for _, pod := range pods {
		if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		active[pod.Spec.NodeName]++
		if !pod.Spec.HostNetwork {
			podNet[pod.Spec.NodeName]++
		}
	}
	in := Input{Table: table()}
	_, silent := probes.SplitReporting(nodes)
	rec.Stage(fmt.Sprintf("reading kubelet configz of %d node(s)", len(nodes)-len(silent)))
	maxPods, errs := probes.FanOut(ctx, len(nodes), 0, func(ctx context.Context, i int) (int32, error) {
		if kube.Unreachable(nodes[i]) {
			return 0, errNotReporting
		}
		return p.configz(ctx, env, nodes[i].Name)
	})
	for i, n := range nodes {
		nd := Node{Name: n.Name, PodCIDRs: n.Spec.PodCIDRs, ActivePods: active[n.Name], PodNetworkPods: podNet[n.Name]}
		if len(nd.PodCIDRs) == 0 && n.Spec.PodCIDR != "" {
			nd.PodCIDRs = []string{n.Spec.PodCIDR}
		}
		if q, ok := n.Status.Capacity[corev1.ResourcePods]; ok {
			nd.CapacityPods = q.Value()
		}
		mp, err := maxPods[i], errs[i]
		if ctx.Err() != nil {
			return ctx.Err() // configz errors are evidence, a cancelled run is not
		}
		nd.ConfigzMaxPods = mp
		if err != nil {
			nd.ConfigzErr = err.Error()
		}
		in.Nodes = append(in.Nodes, nd)
	}
	rec.Stage("reading the cluster CIDR from kube-controller-manager or kubeadm-config")
	in.Network = kube.DiscoverClusterNetwork(ctx, env.Snap())
	for _, f := range Analyze(in) {
		rec.Finding(f)
	}
	for _, f := range probes.Skipped(ID, "read the kubelet's maxPods (configz) of", kube.EveryNode(nodes), silent) {
		rec.Finding(f)
	}
	return nil
}

// errNotReporting is why a node's configz was not read: its kubelet stopped
// reporting (the run's nodes.not-ready finding says so).
var errNotReporting = errors.New("not read: its kubelet is not reporting (nodes.not-ready); status.capacity.pods used")
