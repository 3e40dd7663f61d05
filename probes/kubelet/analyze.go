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
	"github.com/netsleuth/netsleuth/probes/clusterdns"
	"github.com/netsleuth/netsleuth/probes/fix"
)

// Finding IDs: kubelet.<check id> for every check in assets/kubelet-checks.yaml,
// plus these.
const (
	IDPrefix                 = "kubelet."
	IDConfigzUnread          = "kubelet.configz-unreadable"
	IDMakeIPTablesUtilChains = "kubelet.make-iptables-util-chains"
	IDClusterDNS             = clusterdns.IDKubeletDNS
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
	ProxyMode    string
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
			out = append(out, render(c, n, subj, o, in))
		}
		out = append(out, clusterdns.KubeletDNS(n.Name, clusterDNSOf(n.Config), in.DNS.topology()))
	}
	return out
}

// clusterDNSOf reads clusterDNS from generic configz JSON.
func clusterDNSOf(cfg map[string]any) []string {
	var ips []string
	if list, ok := cfg["clusterDNS"].([]any); ok {
		for _, x := range list {
			ips = append(ips, show(x))
		}
	}
	return ips
}

// topology is the view as the shared clusterDNS check reads it.
func (v DNSView) topology() clusterdns.Topology {
	if !v.Known {
		return clusterdns.Topology{Notes: []string{v.Note}}
	}
	t := clusterdns.Topology{ProxyMode: v.ProxyMode}
	if len(v.ServiceIPs) > 0 {
		t.Service = &clusterdns.Service{Namespace: clusterdns.SystemNS, Name: clusterdns.ServiceName, ClusterIPs: v.ServiceIPs}
	}
	t.NodeLocal = clusterdns.NodeLocal{Present: len(v.NodeLocalIPs) > 0, Addresses: v.NodeLocalIPs}
	return t
}

func evaluate(c assets.KubeletCheck, n Node, in Input) outcome {
	v, set := lookup(n.Config, c.Path())
	switch c.Rule {
	case "equals":
		return equals(c, v, set)
	case "cgroup-driver":
		return cgroupDriver(c, n, in.Nodes)
	case "cluster-domain":
		return clusterDomain(v, set, in.DNS)
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

func render(c assets.KubeletCheck, n Node, subj *model.Subject, o outcome, in Input) model.Finding {
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
	if field, value, ok := setting(c, n, o, in); ok {
		f.Fixes = fix.Kubelet(n.Name, field, value)
	}
	for _, fx := range c.Fixes {
		mf := model.Fix{Description: expand(fx.Description, d)}
		for _, cmd := range fx.Commands {
			mf.Commands = append(mf.Commands, expand(cmd, d))
		}
		f.Fixes = append(f.Fixes, mf)
	}
	return f
}

// setting is the configuration change that makes check c pass on node n:
// the top-level field of the kubelet's configuration file and its new value
// as JSON (valid YAML), built from the live configz value so the rest of a
// nested field (authentication.x509, say) is kept.
func setting(c assets.KubeletCheck, n Node, o outcome, in Input) (field, value string, ok bool) {
	path := c.Path()
	var want any
	switch c.Rule {
	case "equals":
		want = c.Expected
	case "cluster-domain":
		if len(in.DNS.Zones) == 0 {
			return "", "", false
		}
		want = in.DNS.Zones[0]
	default:
		return "", "", false
	}
	top := any(want)
	if len(path) > 1 {
		cur, _ := n.Config[path[0]].(map[string]any)
		top = setPath(cloneJSON(cur), path[1:], want)
	}
	b, err := json.Marshal(top)
	if err != nil {
		return "", "", false
	}
	return path[0], string(b), true
}

func cloneJSON(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

// setPath sets the value at path inside m, creating objects on the way.
func setPath(m map[string]any, path []string, v any) map[string]any {
	if len(path) == 1 {
		m[path[0]] = v
		return m
	}
	sub, _ := m[path[0]].(map[string]any)
	if sub == nil {
		sub = map[string]any{}
	}
	m[path[0]] = setPath(sub, path[1:], v)
	return m
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
