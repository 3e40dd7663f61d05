// Package ipmasq is the ip-masq-agent probe (scenario B): when the agent is
// configured it checks that nonMasqueradeCIDRs covers every node's pod CIDR
// and the cluster CIDR, so pod-to-pod traffic is not SNATed to node IPs.
package ipmasq

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// ID is the probe's identifier for --probe.
const ID = "ipmasq"

type probe struct{}

// New returns the ipmasq probe.
func New() probes.Probe { return probe{} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID:       ID,
		Title:    "ip-masq-agent coverage of pod CIDRs",
		Scenario: "B",
		Description: "Reads ConfigMap kube-system/ip-masq-agent the way the agent does and checks that " +
			"nonMasqueradeCIDRs covers every node podCIDR and the cluster CIDR; otherwise pod-to-pod " +
			"traffic is SNATed to node IPs. Emits the corrected ConfigMap.",
		RBAC:    model.MergePermissions(rbacConfig, kube.RBACNodes, kube.RBACClusterNetwork),
		Default: true,
	}
}

// rbacConfig is what Run reads of ip-masq-agent: its ConfigMap and DaemonSet.
var rbacConfig = model.MergePermissions(kube.RBACConfigMap, kube.RBACDaemonSet)

func (probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("reading ConfigMap kube-system/ip-masq-agent")
	var in Input
	cm, err := env.Snap().ConfigMap(ctx, Namespace, Name)
	switch {
	case err == nil:
		in.Config = cm.Data
		if in.Config == nil {
			in.Config = map[string]string{}
		}
	case !apierrors.IsNotFound(err):
		return err
	}
	rec.Stage("reading DaemonSet kube-system/ip-masq-agent")
	ds, err := env.Snap().DaemonSet(ctx, Namespace, Name)
	switch {
	case err == nil:
		in.Agent = Agent{Found: true, Ready: ds.Status.NumberReady, Scheduled: ds.Status.DesiredNumberScheduled}
		for _, c := range ds.Spec.Template.Spec.Containers {
			in.Agent.Args = append(append(in.Agent.Args, c.Command...), c.Args...)
		}
	case !apierrors.IsNotFound(err):
		in.Agent.Err = err.Error()
	}
	if in.Config == nil && !in.Agent.Found {
		for _, f := range Analyze(in) {
			rec.Finding(f)
		}
		return nil
	}
	rec.Stage("listing nodes")
	nodes, err := env.Snap().Nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		in.Nodes = append(in.Nodes, Node{Name: n.Name, PodCIDRs: cidrs})
	}
	rec.Stage("reading the cluster CIDR from kube-controller-manager or kubeadm-config")
	in.Network = kube.DiscoverClusterNetwork(ctx, env.Snap())
	for _, f := range Analyze(in) {
		rec.Finding(f)
	}
	return nil
}
