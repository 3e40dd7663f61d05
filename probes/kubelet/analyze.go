package kubelet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"text/template"

	"github.com/netsleuth/netsleuth/assets"
	"github.com/netsleuth/netsleuth/model"
)

// Finding IDs: kubelet.<check id> for every check in assets/kubelet-checks.yaml,
// plus these.
const (
	IDPrefix                 = "kubelet."
	IDConfigzUnread          = "kubelet.configz-unreadable"
	IDMakeIPTablesUtilChains = "kubelet.make-iptables-util-chains"
	IDClusterDNS             = "kubelet.cluster-dns"
)

// Node is what the probe reads about one node.
type Node struct {
	Name     string
	PodCIDRs []string
	// Runtime is status.nodeInfo.containerRuntimeVersion (containerd://1.7.2).
	Runtime string
	// Config is the configz kubeletconfig object as generic JSON, nil when
	// it could not be read; ConfigErr says why.
	Config    map[string]any
	ConfigErr string
}

// DNSView is what the cluster's DNS deployment says clusterDNS and
// clusterDomain must be. Known is false when it could not be read.
type DNSView struct {
	Known        bool
	ServiceIPs   []string // kube-dns ClusterIPs
	NodeLocalIPs []string // NodeLocal DNS cache listen addresses
	Zones        []string // CoreDNS kubernetes plugin zones
	Note         string   // why it is not known, or where it was read
}

// Input is everything Analyze reasons about.
type Input struct {
	Nodes  []Node
	Checks []assets.KubeletCheck
	Table  assets.PodCIDRTable
	DNS    DNSView
}

// outcome is one check's result on one node; Actual, Expected and Detail
// feed the catalogue's text templates.
type outcome struct {
	Status                   model.Status
	Actual, Expected, Detail string
	Evidence                 []string
}

// tmplData is what the catalogue's templates see.
type tmplData struct {
	Node, Field, Actual, Expected, Detail string
}

// Analyze runs every check on every node whose configz was read, and reports
// unreadable configz once per node.
func Analyze(in Input) []model.Finding {
	var out []model.Finding
	for _, n := range in.Nodes {
		subj := &model.Subject{Kind: "Node", Name: n.Name}
		if n.Config == nil {
			out = append(out, unreadableFinding(n, subj))
			continue
		}
		for _, c := range in.Checks {
			o := evaluate(c, n, in)
			out = append(out, render(c, n, subj, o))
		}
	}
	for i := range out {
		out[i].Probe = ID
	}
	return out
}

func evaluate(c assets.KubeletCheck, n Node, in Input) outcome {
	v, set := lookup(n.Config, c.Path())
	switch c.Rule {
	case "equals":
		return equals(c, v, set)
	case "cgroup-driver":
		return cgroupDriver(c, n, in.Nodes)
	case "cluster-dns":
		return clusterDNS(v, in.DNS)
	case "cluster-domain":
		return clusterDomain(v, set, in.DNS)
	case "max-pods":
		return maxPods(c, n, v, set, in.Table)
	}
	return outcome{Status: model.StatusSkip, Detail: "unknown rule " + c.Rule,
		Evidence: []string{fmt.Sprintf("check %s has rule %q, which this netsleuth does not know", c.ID, c.Rule)}}
}

// lookup walks a dotted path through generic JSON.
func lookup(m map[string]any, path []string) (any, bool) {
	var cur any = m
	for _, k := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// show renders a JSON value for text: strings bare, the rest as JSON.
func show(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func equals(c assets.KubeletCheck, v any, set bool) outcome {
	src := "configz"
	if !set {
		v, src = c.Default, "kubelet default, field absent from configz"
	}
	o := outcome{Actual: show(v), Expected: show(c.Expected), Status: model.StatusPass}
	if v == nil {
		o.Actual = "(unset)"
	}
	if !reflect.DeepEqual(v, c.Expected) {
		o.Status = model.Status(c.Severity)
	}
	o.Evidence = []string{fmt.Sprintf("%s = %s (%s); required: %s", c.Field, o.Actual, src, o.Expected)}
	return o
}

func render(c assets.KubeletCheck, n Node, subj *model.Subject, o outcome) model.Finding {
	d := tmplData{Node: n.Name, Field: c.Field, Actual: o.Actual, Expected: o.Expected, Detail: o.Detail}
	f := model.Finding{ID: IDPrefix + c.ID, Status: o.Status, Subject: subj, Evidence: o.Evidence}
	switch o.Status {
	case model.StatusPass:
		f.Title = expand(c.PassTitle, d)
		return f
	case model.StatusSkip:
		f.Title = fmt.Sprintf("node %s: %s not checked: %s", n.Name, c.Field, o.Detail)
		return f
	}
	f.Title, f.RootCause, f.References = expand(c.Title, d), expand(c.RootCause, d), c.References
	for _, fx := range c.Fixes {
		mf := model.Fix{Description: expand(fx.Description, d)}
		for _, cmd := range fx.Commands {
			mf.Commands = append(mf.Commands, expand(cmd, d))
		}
		f.Fixes = append(f.Fixes, mf)
	}
	return f
}

// expand renders a catalogue template; a broken template (caught by the
// catalogue's tests) falls back to its source text.
func expand(src string, d tmplData) string {
	t, err := template.New("").Option("missingkey=error").Parse(src)
	if err != nil {
		return src
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return src
	}
	return strings.TrimSpace(b.String())
}

func unreadableFinding(n Node, subj *model.Subject) model.Finding {
	return model.Finding{
		ID: IDConfigzUnread, Status: model.StatusError, Subject: subj,
		Title: fmt.Sprintf("node %s: kubelet configuration not readable through configz", n.Name),
		RootCause: fmt.Sprintf("The API server could not read /api/v1/nodes/%s/proxy/configz (%s), so the kubelet on %s was not audited; the kubelet is down, not Ready, or the API server cannot reach its port 10250.",
			n.Name, n.ConfigErr, n.Name),
		Evidence: []string{n.ConfigErr},
		Fixes: []model.Fix{{
			Description: "Check that the node is Ready and its kubelet runs and is reachable from the API server, then run the probe again.",
			Commands: []string{
				"kubectl get node " + n.Name + " -o wide",
				"kubectl get --raw /api/v1/nodes/" + n.Name + "/proxy/configz",
				"# on node " + n.Name + ": systemctl status kubelet -l; journalctl -u kubelet --since -10m",
			},
		}},
		References: []string{"https://kubernetes.io/docs/tasks/administer-cluster/reconfigure-kubelet/"},
	}
}
