// Package kubelet is the kubelet configuration audit (scenario F): it reads
// every node's live kubelet configuration through the API server's node proxy
// (/api/v1/nodes/<node>/proxy/configz, no node login) and runs the check
// catalogue in assets/kubelet-checks.yaml on it, cross-checking clusterDNS and
// clusterDomain with the cluster's DNS deployment and maxPods with the pod
// CIDR sizing table.
package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/netsleuth/netsleuth/assets"
	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/dns"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// ID is the probe's identifier for --probe.
const ID = "kubelet"

var (
	checks = sync.OnceValue(assets.MustKubeletChecks)
	table  = sync.OnceValue(assets.MustPodCIDRTable)
)

type probe struct {
	// configz reads a node's kubelet configuration; tests replace it.
	configz func(ctx context.Context, c kubernetes.Interface, node string) (*kubeletv1beta1.KubeletConfiguration, error)
}

// New returns the kubelet probe.
func New() probes.Probe { return probe{configz: kube.KubeletConfig} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID:       ID,
		Title:    "Kubelet configuration audit (configz)",
		Scenario: "F",
		Description: "Reads every kubelet's live configuration through the API server (nodes/proxy configz, no node login) " +
			"and checks makeIPTablesUtilChains, anonymous auth, authorization mode, readOnlyPort, cgroupDriver, " +
			"clusterDNS/clusterDomain against the cluster DNS, and maxPods against the node's pod CIDR.",
		RBAC: []model.Permission{
			{Resource: "nodes", Verbs: []string{"list"}},
			{Resource: "nodes", Subresource: "proxy", Verbs: []string{"get"}},
			{Resource: "services", Verbs: []string{"get"}},
			{Resource: "pods", Verbs: []string{"list"}},
			{Resource: "configmaps", Verbs: []string{"get"}},
			{Group: "discovery.k8s.io", Resource: "endpointslices", Verbs: []string{"list"}},
			{Group: "apps", Resource: "daemonsets", Verbs: []string{"get"}},
		},
		Default: true,
	}
}

func (p probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("listing nodes")
	nodes, err := kube.Nodes(ctx, env.Kube)
	if err != nil {
		return err
	}
	in := Input{Checks: checks().Checks, Table: table()}
	for _, n := range nodes {
		rec.Stage("reading kubelet configz of node " + n.Name)
		nd := Node{Name: n.Name, PodCIDRs: n.Spec.PodCIDRs, Runtime: n.Status.NodeInfo.ContainerRuntimeVersion}
		if len(nd.PodCIDRs) == 0 && n.Spec.PodCIDR != "" {
			nd.PodCIDRs = []string{n.Spec.PodCIDR}
		}
		cfg, err := p.configz(ctx, env.Kube, n.Name)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case kube.Forbidden(err):
			// nodes/proxy is granted cluster-wide or not at all: the runner
			// turns this into one error finding with the missing permission.
			return proxyForbidden(ctx, env.Kube, n.Name, err)
		case err != nil:
			nd.ConfigErr = err.Error()
		default:
			if nd.Config, err = generic(cfg); err != nil {
				nd.ConfigErr = err.Error()
			}
		}
		in.Nodes = append(in.Nodes, nd)
	}
	rec.Stage("reading the cluster DNS Service, CoreDNS Corefile and NodeLocal DNS cache")
	in.DNS = dnsView(ctx, env.Kube)
	for _, f := range Analyze(in) {
		rec.Finding(f)
	}
	return nil
}

// proxyForbidden restates a configz denial in the API server's own words
// when client-go could not decode them ("unknown (get nodes ...)"), so the
// runner can name the permission and the user.
func proxyForbidden(ctx context.Context, c kubernetes.Interface, node string, err error) error {
	if strings.Contains(err.Error(), "cannot get resource") {
		return err
	}
	user := ""
	if r, rerr := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{}); rerr == nil {
		user = r.Status.UserInfo.Username
	}
	return apierrors.NewForbidden(schema.GroupResource{Resource: "nodes/proxy"}, node,
		fmt.Errorf("User %q cannot get resource \"nodes/proxy\" at the cluster scope, which reading the kubelet's configz needs (%v)", user, err))
}

// generic turns the typed configuration back into the JSON object configz
// served, so checks address fields by their JSON path.
func generic(cfg *kubeletv1beta1.KubeletConfiguration) (map[string]any, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding kubelet configuration: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding kubelet configuration: %w", err)
	}
	return m, nil
}

// dnsView reads what clusterDNS and clusterDomain must agree with.
func dnsView(ctx context.Context, c kubernetes.Interface) DNSView {
	t, err := dns.Discover(ctx, c)
	if err != nil {
		return DNSView{Note: "cluster DNS not readable: " + err.Error()}
	}
	v := DNSView{Known: t.Service != nil || t.NodeLocal.Present, ServiceIPs: t.ServiceIPs(), Note: "no kube-dns Service and no NodeLocal DNS cache found"}
	if t.NodeLocal.Present {
		v.NodeLocalIPs = t.NodeLocal.Addresses
	}
	if t.Corefile != nil {
		v.Zones = t.Corefile.KubernetesZones()
		v.Note = "CoreDNS zones from " + t.CorefileSource
	}
	return v
}
