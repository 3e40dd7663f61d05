package ipmasq

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// Finding IDs of this probe; they are a stable contract for scripts.
const (
	IDNotConfigured     = "ipmasq.not-configured"
	IDConfigInvalid     = "ipmasq.config-invalid"
	IDUnknownKey        = "ipmasq.unknown-key"
	IDCovered           = "ipmasq.pod-cidr-covered"
	IDMasqueraded       = "ipmasq.pod-cidr-masqueraded"
	IDClusterMasquerade = "ipmasq.cluster-cidr-masqueraded"
	IDNoNodeCIDRs       = "ipmasq.no-node-cidrs"
)

const (
	refAgent   = "https://kubernetes.io/docs/tasks/administer-cluster/ip-masq-agent/"
	refRepo    = "https://github.com/kubernetes-sigs/ip-masq-agent#configuring-the-agent"
	refNetwork = "https://kubernetes.io/docs/concepts/cluster-administration/networking/"
)

// Namespace and Name of the agent's ConfigMap and DaemonSet.
const (
	Namespace = "kube-system"
	Name      = "ip-masq-agent"
)

// Agent is what the probe could read of the ip-masq-agent DaemonSet.
type Agent struct {
	Found            bool
	Args             []string
	Ready, Scheduled int32
	// Err says why the DaemonSet could not be read, "" if it was.
	Err string
}

func (a Agent) flag(name string) bool {
	for _, s := range a.Args {
		if s == "--"+name || s == "--"+name+"=true" || s == "-"+name {
			return true
		}
	}
	return false
}

// Node is one node's pod CIDRs.
type Node struct {
	Name     string
	PodCIDRs []string
}

// Input is everything Analyze reasons about.
type Input struct {
	// Config is the ConfigMap's data; nil when the ConfigMap does not exist.
	Config  map[string]string
	Agent   Agent
	Nodes   []Node
	Network kube.ClusterNetwork
}

// Analyze checks that ip-masq-agent leaves pod-to-pod traffic unmasqueraded.
func Analyze(in Input) []model.Finding {
	out := analyze(in)
	for i := range out {
		out[i].Probe = ID
	}
	kube.SortFindings(out)
	return out
}

func analyze(in Input) []model.Finding {
	cmSubj := &model.Subject{Kind: "ConfigMap", Namespace: Namespace, Name: Name}
	ev := agentEvidence(in.Agent)
	if in.Config == nil && !in.Agent.Found {
		return []model.Finding{{ID: IDNotConfigured, Status: model.StatusSkip, Subject: cmSubj, Evidence: append([]string{"ConfigMap kube-system/ip-masq-agent not found"}, ev...),
			Title: "ip-masq-agent is not configured: no ConfigMap kube-system/ip-masq-agent"}}
	}
	var ipv6 *bool
	if in.Agent.Found {
		v := in.Agent.flag("enable-ipv6")
		ipv6 = &v
	}
	defaults := Defaults(in.Agent.flag("nomasq-all-reserved-ranges"))
	doc, hasDoc := in.Config["config"]
	switch {
	case in.Config == nil:
		ev = append(ev, "ConfigMap kube-system/ip-masq-agent not found: the agent uses its defaults")
	case !hasDoc:
		ev = append(ev, "ConfigMap kube-system/ip-masq-agent has no key \"config\": the agent uses its defaults")
	default:
		ev = append(ev, "ConfigMap kube-system/ip-masq-agent config: "+strings.Join(strings.Fields(doc), " "))
	}
	cfg := defaults
	if hasDoc {
		var err error
		cfg, err = ParseConfig(doc, defaults, ipv6)
		if err != nil {
			return []model.Finding{invalid(cmSubj, ev, err, in, defaults)}
		}
	}
	ev = append(ev, "effective nonMasqueradeCIDRs: "+prefixList(cfg.NonMasqueradeCIDRs))
	var out []model.Finding
	if len(cfg.UnknownKeys) > 0 {
		out = append(out, unknownKeyFinding(cmSubj, ev, cfg, in))
	}
	out = append(out, nodeFindings(in, cfg, ev)...)
	if f, bad := clusterFinding(cmSubj, in, cfg, ev); bad {
		out = append(out, f)
	}
	return out
}

func agentEvidence(a Agent) []string {
	switch {
	case a.Err != "":
		return []string{"DaemonSet kube-system/ip-masq-agent not readable: " + a.Err}
	case !a.Found:
		return []string{"DaemonSet kube-system/ip-masq-agent not found (the config may be read by an agent deployed under another name)"}
	}
	return []string{fmt.Sprintf("DaemonSet kube-system/ip-masq-agent: %d/%d pods ready, args %s", a.Ready, a.Scheduled, orNone(strings.Join(a.Args, " ")))}
}

func nodeFindings(in Input, cfg Config, ev []string) []model.Finding {
	var out []model.Finding
	found := false
	for _, n := range in.Nodes {
		for _, s := range n.PodCIDRs {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				continue
			}
			found = true
			subj := &model.Subject{Kind: "Node", Name: n.Name}
			if Covered(p, cfg.NonMasqueradeCIDRs) {
				out = append(out, model.Finding{ID: IDCovered, Status: model.StatusPass, Subject: subj,
					Title:    fmt.Sprintf("node %s pod CIDR %s is in nonMasqueradeCIDRs", n.Name, p),
					Evidence: []string{fmt.Sprintf("node %s podCIDR %s is covered by nonMasqueradeCIDRs %s", n.Name, p, prefixList(cfg.NonMasqueradeCIDRs))}})
				continue
			}
			out = append(out, model.Finding{
				ID: IDMasqueraded, Status: model.StatusFail, Subject: subj,
				Title:      fmt.Sprintf("node %s pod CIDR %s is masqueraded by ip-masq-agent", n.Name, p),
				Evidence:   append([]string{fmt.Sprintf("node %s podCIDR %s is not covered by nonMasqueradeCIDRs %s", n.Name, p, prefixList(cfg.NonMasqueradeCIDRs))}, ev...),
				RootCause:  fmt.Sprintf("ip-masq-agent's nonMasqueradeCIDRs (%s) do not include node %s's pod CIDR %s, so traffic from other pods to pods on %s is SNATed to the sending node's IP: destination pods see node addresses instead of pod addresses, NetworkPolicy ingress rules by pod or namespace stop matching, and same-node traffic breaks when intranode visibility is on.", prefixList(cfg.NonMasqueradeCIDRs), n.Name, p, n.Name),
				Fixes:      []model.Fix{applyFix(in, cfg), checkFix},
				References: []string{refAgent, refRepo},
			})
		}
	}
	if !found {
		out = append(out, model.Finding{ID: IDNoNodeCIDRs, Status: model.StatusSkip, Subject: &model.Subject{Kind: "Cluster"}, Evidence: ev,
			Title: "no node has spec.podCIDR, so node pod ranges cannot be checked against nonMasqueradeCIDRs"})
	}
	return out
}

func clusterFinding(subj *model.Subject, in Input, cfg Config, ev []string) (model.Finding, bool) {
	var missing []string
	for _, c := range in.Network.ClusterCIDRs {
		if !Covered(c, cfg.NonMasqueradeCIDRs) {
			missing = append(missing, c.String())
		}
	}
	if len(missing) == 0 {
		return model.Finding{}, false
	}
	return model.Finding{
		ID: IDClusterMasquerade, Status: model.StatusWarn, Subject: subj,
		Title:      fmt.Sprintf("cluster CIDR %s is not fully in nonMasqueradeCIDRs", strings.Join(missing, ",")),
		Evidence:   append([]string{fmt.Sprintf("cluster CIDR %s (%s)", strings.Join(missing, ","), in.Network.Source)}, ev...),
		RootCause:  fmt.Sprintf("ip-masq-agent's nonMasqueradeCIDRs (%s) do not cover the cluster CIDR %s, so every node that receives a pod CIDR from the uncovered part will have its pods' traffic SNATed to node addresses.", prefixList(cfg.NonMasqueradeCIDRs), strings.Join(missing, ",")),
		Fixes:      []model.Fix{applyFix(in, cfg), checkFix},
		References: []string{refAgent, refRepo, refNetwork},
	}, true
}

func unknownKeyFinding(subj *model.Subject, ev []string, cfg Config, in Input) model.Finding {
	return model.Finding{
		ID: IDUnknownKey, Status: model.StatusWarn, Subject: subj, Evidence: ev,
		Title:      fmt.Sprintf("ip-masq-agent config has unknown key(s) %s", strings.Join(cfg.UnknownKeys, ", ")),
		RootCause:  fmt.Sprintf("ConfigMap kube-system/ip-masq-agent sets %s, which ip-masq-agent does not know and silently ignores, so whatever it was meant to configure keeps its default.", strings.Join(cfg.UnknownKeys, ", ")),
		Fixes:      []model.Fix{applyFix(in, cfg), checkFix},
		References: []string{refRepo},
	}
}

func invalid(subj *model.Subject, ev []string, err error, in Input, defaults Config) model.Finding {
	return model.Finding{
		ID: IDConfigInvalid, Status: model.StatusFail, Subject: subj, Evidence: append(ev, "parse error: "+err.Error()),
		Title:      "ip-masq-agent config is invalid: " + err.Error(),
		RootCause:  fmt.Sprintf("ip-masq-agent cannot use ConfigMap kube-system/ip-masq-agent (%v), so it logs \"error syncing configuration\" every resync and keeps the rules it had before, or none on a fresh node.", err),
		Fixes:      []model.Fix{applyFix(in, defaults), checkFix},
		References: []string{refAgent, refRepo},
	}
}

// applyFix returns the corrected ConfigMap: cfg's CIDRs plus the cluster
// CIDRs (or, if unknown, every node pod CIDR) they fail to cover.
func applyFix(in Input, cfg Config) model.Fix {
	fixed := cfg
	fixed.NonMasqueradeCIDRs = append([]netip.Prefix{}, cfg.NonMasqueradeCIDRs...)
	add := func(p netip.Prefix) {
		if !Covered(p, fixed.NonMasqueradeCIDRs) {
			fixed.NonMasqueradeCIDRs = append(fixed.NonMasqueradeCIDRs, p.Masked())
		}
	}
	for _, c := range in.Network.ClusterCIDRs {
		add(c)
	}
	for _, n := range in.Nodes {
		for _, s := range n.PodCIDRs {
			if p, err := netip.ParsePrefix(s); err == nil {
				add(p)
			}
		}
	}
	return model.Fix{
		Description: "Apply this corrected ConfigMap (kubectl apply -f -; it keeps your other settings and adds the missing pod ranges); the agent re-reads it within resyncInterval, no restart needed.",
		Manifest:    Manifest(fixed),
	}
}

// checkFix is what to look at once the corrected ConfigMap is in.
var checkFix = model.Fix{Description: "Then check that the agent picked it up, and its rules on a node:",
	Commands: []string{"kubectl -n kube-system logs ds/ip-masq-agent --tail=20", "# on a node: iptables -t nat -S IP-MASQ-AGENT"}}

func prefixList(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
