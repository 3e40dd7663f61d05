package report

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/netsleuth/netsleuth/model"
)

// AggregateOver is how many findings of one ID and status the text report
// and the TUI show one by one: more than that are one entry (JSON, YAML and
// JUnit keep every finding).
const AggregateOver = 5

// shownSubjects is how many subjects an aggregate entry names.
const shownSubjects = 10

// maxEvidence is how many evidence lines a finding shows in the text report
// before the rest is left to -o json.
const maxEvidence = 20

// Group is findings of one ID and status, in report order: one finding, or
// more than AggregateOver shown as one entry.
type Group struct {
	Findings []model.Finding
}

// First is the group's first finding.
func (g Group) First() model.Finding { return g.Findings[0] }

// Aggregate reports whether the group is shown as one entry.
func (g Group) Aggregate() bool { return len(g.Findings) > AggregateOver }

// Group findings by ID, status and class (class may be nil): a group keeps
// the place of its first finding; a set of AggregateOver or fewer stays
// one group per finding, in report order.
func groupFindings(fs []model.Finding, class func(model.Finding) string) []Group {
	key := func(f model.Finding) string {
		k := f.ID + "|" + string(f.Status)
		if class != nil {
			k += "|" + class(f)
		}
		return k
	}
	count := map[string]int{}
	for _, f := range fs {
		count[key(f)]++
	}
	var out []Group
	at := map[string]int{}
	for _, f := range fs {
		k := key(f)
		if count[k] <= AggregateOver {
			out = append(out, Group{Findings: []model.Finding{f}})
			continue
		}
		if i, ok := at[k]; ok {
			out[i].Findings = append(out[i].Findings, f)
			continue
		}
		at[k] = len(out)
		out = append(out, Group{Findings: []model.Finding{f}})
	}
	return out
}

// RootCauseGroups are the report's root causes (RootCauses) grouped: the
// numbers the text report and the TUI give root causes are these groups'.
func RootCauseGroups(r *model.Report) []Group { return groupFindings(RootCauses(r), nil) }

// GroupSymptoms groups the symptoms of a root-cause group by ID and status.
func GroupSymptoms(r *model.Report, g Group) []Group {
	var syms []model.Finding
	for _, f := range g.Findings {
		syms = append(syms, r.Symptoms(f.Key)...)
	}
	return groupFindings(syms, func(f model.Finding) string { return f.Probe })
}

// groupPhrases say what many findings of one ID have in common, after their
// count: "412 Services have no ready endpoints".
var groupPhrases = map[string]string{
	"services.ok":                       "Services are healthy",
	"services.no-ready-endpoints":       "Services have no ready endpoints",
	"services.selector-no-match":        "Services have a selector that matches no pod",
	"services.scaled-to-zero":           "Services select only workloads scaled to zero",
	"services.no-selector-no-endpoints": "Services have no selector and no endpoints",
	"services.target-port-unknown":      "Services target a port name their pods do not declare",
	"services.endpointslice-stale":      "Services have EndpointSlices out of step with their pods",
	"services.endpointslice-missing":    "Services have no EndpointSlice for their ready pods",
	"services.external-name":            "Services are ExternalName aliases",
	"kubelet.configz-unreadable":        "nodes' kubelet configuration is not readable through configz",
	"kubelet.make-iptables-util-chains": "kubelets: makeIPTablesUtilChains",
	"kubelet.anonymous-auth":            "kubelets: anonymous authentication",
	"kubelet.authorization-mode":        "kubelets: authorization mode",
	"kubelet.read-only-port":            "kubelets: read-only port",
	"kubelet.cgroup-driver":             "kubelets: cgroup driver",
	"kubelet.cluster-dns":               "kubelets: clusterDNS",
	"kubelet.cluster-domain":            "kubelets: clusterDomain",
	"podcidr.node":                      "nodes' pod CIDRs fit their maxPods",
	"podcidr.node-cidr-undersized":      "nodes have a pod CIDR smaller than recommended for their maxPods",
	"podcidr.node-cidr-too-small":       "nodes have a pod CIDR with fewer addresses than maxPods",
	"podcidr.node-pods-high":            "nodes are near their pod limit",
	"podcidr.node-pods-full":            "nodes are at their pod limit",
	"podcidr.node-no-cidr":              "nodes have no pod CIDR while others do",
	"runtime.node":                      "nodes run containerd or CRI-O",
	"runtime.socket-mount":              "workloads can reach a container runtime socket",
	"runtime.docker-socket-mount":       "workloads mount the Docker socket",
	"ipmasq.pod-cidr-covered":           "nodes' pod CIDRs are in nonMasqueradeCIDRs",
	"ipmasq.pod-cidr-masqueraded":       "nodes' pod CIDRs are missing from nonMasqueradeCIDRs",
	"dns.nodelocal-ready":               "nodes run the NodeLocal DNS cache",
	"dns.nodelocal-not-ready":           "nodes do not run the NodeLocal DNS cache",
	"node.ip-forward":                   "nodes: net.ipv4.ip_forward",
	"node.bridge-nf-call-iptables":      "nodes: net.bridge.bridge-nf-call-iptables",
	"node.conntrack":                    "nodes: conntrack usage",
	"agent.not-started":                 "nodes did not run netsleuth's agent",
	"policy.selects-nothing":            "NetworkPolicies select no pod",
	"policy.peer-matches-nothing":       "NetworkPolicy peers match no pod",
	"policy.named-port-missing":         "NetworkPolicies name a port no target pod declares",
}

// Title is the group's line: its finding's title, or for an aggregate
// entry the count, what the findings share and the first subjects.
func Title(g Group) string {
	if !g.Aggregate() {
		return g.First().Title
	}
	return groupTitle(g)
}

// groupTitle is an aggregate entry's line: the count, what the findings
// share, and the first subjects.
func groupTitle(g Group) string {
	f := g.First()
	what, ok := groupPhrases[f.ID]
	if !ok {
		switch {
		case strings.HasSuffix(f.ID, ".agent-not-started"):
			what = "nodes where the agent could not start"
		default:
			what = f.ID + " findings"
		}
	}
	names := make([]string, 0, shownSubjects)
	for _, x := range g.Findings[:min(len(g.Findings), shownSubjects)] {
		names = append(names, subjectName(x))
	}
	more := ""
	if len(g.Findings) > shownSubjects {
		more = ", …"
	}
	return fmt.Sprintf("%s %s; first %d: %s%s", count(len(g.Findings)), what, len(names), strings.Join(names, ", "), more)
}

// subjectName is a finding's subject as a list names it: ns/name, or name.
func subjectName(f model.Finding) string {
	s := f.Subject
	switch {
	case s == nil:
		return f.Title
	case s.Namespace != "" && s.Name != "":
		return s.Namespace + "/" + s.Name
	case s.Name != "":
		return s.Name
	}
	return s.String()
}

// count renders n with thousands separators.
func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// generic replaces f's subject (namespace, name) in s with placeholders, so
// two findings' texts can be compared modulo their subject.
func generic(f model.Finding, s string) string {
	if f.Subject == nil || s == "" {
		return s
	}
	for _, p := range []struct{ v, with string }{{f.Subject.Name, "<name>"}, {f.Subject.Namespace, "<namespace>"}} {
		if p.v == "" {
			continue
		}
		re := regexp.MustCompile(`(^|[^A-Za-z0-9_.-])` + regexp.QuoteMeta(p.v) + `($|[^A-Za-z0-9_-])`)
		// Twice: a match consumes the boundary the next one needs ("a a").
		for range 2 {
			s = re.ReplaceAllString(s, "${1}"+p.with+"${2}")
		}
	}
	return s
}

// genericFixes are f's fixes with its subject replaced by placeholders.
func genericFixes(f model.Finding) []model.Fix {
	out := make([]model.Fix, len(f.Fixes))
	for i, fx := range f.Fixes {
		g := model.Fix{Description: generic(f, fx.Description), Node: generic(f, fx.Node), Manifest: generic(f, fx.Manifest)}
		for _, c := range fx.Commands {
			g.Commands = append(g.Commands, generic(f, c))
		}
		out[i] = g
	}
	return out
}

// sharedFixes are the group's fixes when they are the same for every
// finding modulo its subject.
func sharedFixes(g Group) ([]model.Fix, bool) {
	want := genericFixes(g.First())
	for _, f := range g.Findings[1:] {
		if !reflect.DeepEqual(genericFixes(f), want) {
			return nil, false
		}
	}
	return want, true
}

// sharedRootCause is the group's root cause when it is the same for every
// finding modulo its subject.
func sharedRootCause(g Group) (string, bool) {
	want := generic(g.First(), g.First().RootCause)
	for _, f := range g.Findings[1:] {
		if generic(f, f.RootCause) != want {
			return "", false
		}
	}
	return want, true
}
