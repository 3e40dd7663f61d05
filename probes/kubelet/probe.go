// Package kubelet is the kubelet configuration audit (scenario F): it reads
// every node's live kubelet configuration through the API server's node proxy
// (/api/v1/nodes/<node>/proxy/configz, no node login) and runs the check
// catalogue in assets/kubelet-checks.yaml on it, cross-checking clusterDNS and
// clusterDomain with the cluster's DNS deployment (maxPods against the pod
// CIDR is the podcidr probe's question).
package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/netsleuth/netsleuth/assets"
	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/clusterdns"
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
	configz func(ctx context.Context, env *probes.Env, node string) (*kubeletv1beta1.KubeletConfiguration, error)
}

// New returns the kubelet probe.
func New() probes.Probe { return probe{configz: snapConfigz} }

// snapConfigz reads node's configz through the run's snapshot (once per run).
func snapConfigz(ctx context.Context, env *probes.Env, node string) (*kubeletv1beta1.KubeletConfiguration, error) {
	return env.Snap().KubeletConfig(ctx, node)
}

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID:       ID,
		Title:    "Kubelet configuration audit (configz)",
		Scenario: "F",
		Description: "Reads every kubelet's live configuration through the API server (nodes/proxy configz, no node login) " +
			"and checks makeIPTablesUtilChains, anonymous auth, authorization mode, readOnlyPort, cgroupDriver, " +
			"clusterDNS/clusterDomain against the cluster DNS.",
		RBAC:    model.MergePermissions(kube.RBACNodes, kube.RBACConfigz, clusterdns.RBAC),
		Default: true,
	}
}

func (p probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("listing nodes")
	nodes, err := env.Snap().Nodes(ctx)
	if err != nil {
		return err
	}
	in := Input{Checks: checks().Checks, Table: table()}
	reporting, silent := probes.SplitReporting(nodes)
	rec.Stage(fmt.Sprintf("reading kubelet configz of %d node(s)", len(reporting)))
	var errs []error
	in.Nodes, errs = probes.FanOut(ctx, len(reporting), 0, func(ctx context.Context, i int) (Node, error) {
		return p.node(ctx, env, reporting[i])
	})
	if err := probes.FirstError(errs); err != nil {
		return err
	}
	rec.Stage("reading the cluster DNS Service, CoreDNS Corefile and NodeLocal DNS cache")
	in.DNS = dnsView(ctx, env.Snap())
	for _, f := range Analyze(in) {
		rec.Finding(f)
	}
	for _, f := range probes.Skipped(ID, "read the kubelet configuration (configz) of", kube.EveryNode(nodes), silent) {
		rec.Finding(f)
	}
	return nil
}

// node reads one node's configz; only a cancelled run or a denial is an error.
func (p probe) node(ctx context.Context, env *probes.Env, n corev1.Node) (Node, error) {
	nd := Node{Name: n.Name, PodCIDRs: kube.PodCIDRs(n), Runtime: n.Status.NodeInfo.ContainerRuntimeVersion}
	cfg, err := p.configz(ctx, env, n.Name)
	switch {
	case ctx.Err() != nil:
		return nd, ctx.Err()
	case kube.Forbidden(err):
		// nodes/proxy is granted cluster-wide or not at all: the runner
		// turns this into one error finding with the missing permission.
		return nd, proxyForbidden(ctx, env.Kube, n.Name, err)
	case err != nil:
		nd.ConfigErr = err.Error()
	default:
		if nd.Config, err = generic(cfg); err != nil {
			nd.ConfigErr = err.Error()
		}
	}
	return nd, nil
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
func dnsView(ctx context.Context, s *kube.Snapshot) DNSView {
	t, err := clusterdns.Discover(ctx, s)
	if err != nil {
		return DNSView{Note: "cluster DNS not readable: " + err.Error()}
	}
	v := DNSView{Known: t.Known(), ProxyMode: t.ProxyMode, ServiceIPs: t.ServiceIPs(), Note: "no kube-dns Service and no NodeLocal DNS cache found"}
	if t.NodeLocal.Present {
		v.NodeLocalIPs = t.NodeLocal.Addresses
	}
	if t.Corefile != nil {
		v.Zones = t.Corefile.KubernetesZones()
		v.Note = "CoreDNS zones from " + t.CorefileSource
	}
	return v
}
