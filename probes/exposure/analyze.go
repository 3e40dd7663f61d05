package exposure

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/fix"
)

// Finding IDs of this probe; they are a stable contract for scripts.
const (
	IDMetadata          = ID + ".metadata"
	IDEtcd              = ID + ".etcd"
	IDKubeletAnonymous  = ID + ".kubelet-anonymous"
	IDKubeletReadOnly   = ID + ".kubelet-readonly"
	IDAPIServerInsecure = ID + ".apiserver-insecure"
	IDNodePort          = ID + ".nodeport"
	IDBadMetadata       = ID + ".bad-metadata-address"
	IDAgentNotStarted   = ID + ".agent-not-started"
)

// Kind is what a check looks for.
type Kind string

// The checks.
const (
	Metadata          Kind = "metadata"
	Etcd              Kind = "etcd"
	KubeletAPI        Kind = "kubelet"
	KubeletReadOnly   Kind = "kubelet-readonly"
	APIServerInsecure Kind = "apiserver-insecure"
	NodePort          Kind = "nodeport"
)

// Check is one address a pod should not be able to use.
type Check struct {
	Kind    Kind
	Addr    string
	Port    int
	Node    string // the node whose IP Addr is, if any
	Service string // ns/name of a NodePort Service
}

// Target is host:port.
func (c Check) Target() string { return c.Addr + ":" + strconv.Itoa(c.Port) }

// Op is what a pod agent sends for the check.
func (c Check) Op() ops.Op {
	switch c.Kind {
	case KubeletAPI:
		return ops.Op{Kind: ops.HTTP, Target: c.Addr, Port: c.Port, Path: "/pods", TLS: true, TimeoutMs: 2000}
	case APIServerInsecure:
		return ops.Op{Kind: ops.HTTP, Target: c.Addr, Port: c.Port, Path: "/version", TimeoutMs: 2000}
	}
	return ops.Op{Kind: ops.TCP, Target: c.Addr, Port: c.Port, TimeoutMs: 2000}
}

// Seen is what one pod agent got for a check.
type Seen struct {
	From   probes.Agent
	Result ops.Result
}

// Input is everything Analyze reasons about.
type Input struct {
	Checks     []Check
	Seen       [][]Seen // per check, per source
	PodCIDRs   []string
	NotStarted []probes.Agent
}

// Analyze returns one finding per check.
func Analyze(in Input) []model.Finding {
	var out []model.Finding
	for _, a := range in.NotStarted {
		out = append(out, agent.NotStarted(ID, a)...)
	}
	for i, c := range in.Checks {
		var seen []Seen
		if i < len(in.Seen) {
			seen = in.Seen[i]
		}
		if len(seen) == 0 {
			continue
		}
		out = append(out, diagnose(in, c, seen))
	}
	return out
}

// exposed returns the first result that shows the check's target answers
// the way that makes it a finding, and whether the status is only a warning.
func exposed(c Check, seen []Seen) (Seen, bool) {
	for _, s := range seen {
		r := s.Result
		if r.Outcome != ops.OK {
			continue
		}
		switch c.Kind {
		case KubeletAPI:
			if r.Status == 200 {
				return s, true
			}
		case APIServerInsecure:
			if strings.Contains(r.Body, "gitVersion") {
				return s, true
			}
		default:
			return s, true
		}
	}
	return Seen{}, false
}

func evidence(seen []Seen) []string {
	var ev []string
	for _, s := range seen {
		ev = append(ev, agent.Evidence(s.From, s.Result))
	}
	return ev
}

func subject(c Check) *model.Subject {
	switch {
	case c.Service != "":
		ns, name, _ := strings.Cut(c.Service, "/")
		return &model.Subject{Kind: "Service", Namespace: ns, Name: name}
	case c.Node != "":
		return &model.Subject{Kind: "Node", Name: c.Node}
	}
	return &model.Subject{Kind: "Endpoint", Name: c.Target()}
}

func diagnose(in Input, c Check, seen []Seen) model.Finding {
	f := model.Finding{Subject: subject(c), Evidence: evidence(seen), Status: model.StatusPass}
	hit, bad := exposed(c, seen)
	var text texts
	switch c.Kind {
	case Metadata:
		f.ID, text = IDMetadata, metadataTexts(c)
	case Etcd:
		f.ID, text = IDEtcd, etcdTexts(c)
	case KubeletAPI:
		f.ID, text = IDKubeletAnonymous, kubeletTexts(c, seen)
	case KubeletReadOnly:
		f.ID, text = IDKubeletReadOnly, readOnlyTexts(c)
	case APIServerInsecure:
		f.ID, text = IDAPIServerInsecure, insecureTexts(c)
	case NodePort:
		f.ID, text = IDNodePort, nodePortTexts(c)
	}
	if !bad {
		f.Title = text.pass
		return f
	}
	f.Status, f.Title = model.StatusFail, text.title
	if c.Kind == NodePort {
		f.Status = model.StatusWarn
	}
	f.RootCause = fmt.Sprintf("%s %s (%s).", text.cause, hit.From.Ref(), agent.Outcome(hit.Result))
	f.Fixes = append([]model.Fix{{Description: text.policyWhy, Manifest: text.policy}}, text.fixes...)
	f.Fixes = append(f.Fixes, nodeFirewall(in, c))
	f.References = text.refs
	return f
}

// nodeFirewall drops pod traffic to the target on the node, for CNIs that do
// not enforce NetworkPolicy.
func nodeFirewall(in Input, c Check) model.Fix {
	src := strings.Join(in.PodCIDRs, ",")
	if src == "" {
		src = "<pod CIDR>"
	}
	chain := "INPUT"
	where := "on node " + c.Node
	if c.Node == "" {
		chain, where = "FORWARD", "on every node"
	}
	return model.Fix{Description: "Or drop pod traffic to it in the host firewall " + where + " (works without NetworkPolicy support):", Node: c.Node,
		Commands: []string{fix.Rule{Chain: chain, Spec: fmt.Sprintf("-s %s -d %s -p tcp --dport %d -j DROP", src, c.Addr, c.Port), Insert: true}.Ensure()}}
}

func opsRequest(checks []Check) ops.Request {
	var req ops.Request
	for _, c := range checks {
		req.Ops = append(req.Ops, c.Op())
	}
	return req
}
