// Package dnschain renders the dns probe's live measurements as one chain
// per node, in the order a pod's query travels: the pod's own resolution
// (resolv.conf and search path), the NodeLocal DNS cache, the kube-dns
// ClusterIP, each CoreDNS pod, the upstream; each hop with its verdict and
// median latency from that node.
package dnschain

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// The live finding IDs of the dns probe, in hop order.
const (
	idResolution     = "dns.live-resolution"
	idResolutionFail = "dns.live-resolution-failed"
	idNodeLocal      = "dns.live-node-local"
	idKubeDNS        = "dns.live-kube-dns"
	idCoreDNSPod     = "dns.live-coredns-pod"
	idUpstream       = "dns.live-upstream"
)

// Hop is one step of a chain.
type Hop struct {
	Name    string // "pod", "NodeLocal", "kube-dns", "CoreDNS 10.244.0.2", "upstream 10.250.0.53"
	Status  model.Status
	Latency string // "p50 0.25 ms", or ""
	Note    string // the finding's title, or the node's problem
	Key     string // the finding
}

// Chain is one node's hops.
type Chain struct {
	Node string
	Hops []Hop
}

var p50RE = regexp.MustCompile(`p50 ([0-9.]+ ms)`)
var totalRE = regexp.MustCompile(`\(([0-9]+ queries, [0-9.]+ ms)\)`)

// IsLive reports whether a finding is one of the dns probe's live hops.
func IsLive(id string) bool {
	return slices.Contains([]string{idResolution, idResolutionFail, idNodeLocal, idKubeDNS, idCoreDNSPod, idUpstream}, id)
}

// Parse builds a chain per node from the dns findings; nodes come from the
// per-node findings' subjects.
func Parse(fs []model.Finding) []Chain {
	var nodes []string
	for _, f := range fs {
		if IsLive(f.ID) && f.Subject != nil && f.Subject.Kind == "Node" && !slices.Contains(nodes, f.Subject.Name) {
			nodes = append(nodes, f.Subject.Name)
		}
	}
	var out []Chain
	for _, n := range nodes {
		c := Chain{Node: n}
		for _, id := range []string{idResolution, idNodeLocal, idKubeDNS} {
			for _, f := range fs {
				if (f.ID == id || (id == idResolution && f.ID == idResolutionFail)) && onNode(f, n) {
					c.Hops = append(c.Hops, nodeHop(f))
				}
			}
		}
		for _, id := range []string{idCoreDNSPod, idUpstream} {
			for _, f := range fs {
				if f.ID == id {
					c.Hops = append(c.Hops, sharedHop(f, n))
				}
			}
		}
		out = append(out, c)
	}
	return out
}

func onNode(f model.Finding, n string) bool {
	return f.Subject != nil && f.Subject.Kind == "Node" && f.Subject.Name == n
}

func nodeHop(f model.Finding) Hop {
	h := Hop{Status: f.Status, Key: f.Key, Note: strings.TrimPrefix(f.Title, "node "+f.Subject.Name+": ")}
	switch f.ID {
	case idResolution, idResolutionFail:
		h.Name = "pod"
		if m := totalRE.FindStringSubmatch(f.Title); m != nil {
			h.Latency = m[1]
		}
	case idNodeLocal:
		h.Name = "NodeLocal"
	case idKubeDNS:
		h.Name = "kube-dns"
	}
	if h.Latency == "" {
		h.Latency = firstP50(f.Evidence)
	}
	return h
}

// sharedHop is a CoreDNS pod or the upstream as seen from node n: its
// evidence has a "from <node>: …" line per node.
func sharedHop(f model.Finding, n string) Hop {
	name := "CoreDNS"
	if f.ID == idUpstream {
		name = "upstream"
	}
	if f.Subject != nil {
		name += " " + f.Subject.Name
	}
	h := Hop{Name: name, Status: f.Status, Key: f.Key, Note: f.Title}
	for _, l := range f.Evidence {
		rest, ok := strings.CutPrefix(l, "from "+n+": ")
		if !ok {
			continue
		}
		h.Latency = firstP50([]string{rest})
		if f.Status.Failing() {
			if strings.Contains(rest, "answered, p50") {
				h.Status = model.StatusPass
			} else {
				h.Note = rest
			}
		}
		break
	}
	return h
}

func firstP50(lines []string) string {
	for _, l := range lines {
		if m := p50RE.FindStringSubmatch(l); m != nil {
			return "p50 " + m[1]
		}
	}
	return ""
}

// Render draws the chains: per node a heading, then the hops one under the
// other joined by a line, each with its verdict, latency and note (cut to
// the width).
func Render(cs []Chain, th *theme.Theme, width int) []string {
	var out []string
	for i, c := range cs {
		if i > 0 {
			out = append(out, "")
		}
		out = append(out, th.Render(th.Label, fmt.Sprintf("DNS from pods on %s", c.Node)))
		nameW, latW := 0, 0
		for _, h := range c.Hops {
			nameW, latW = max(nameW, ansi.StringWidth(h.Name)), max(latW, len(h.Latency))
		}
		for j, h := range c.Hops {
			if j > 0 {
				out = append(out, th.Render(th.Faint, "  │"))
			}
			line := fmt.Sprintf("  %s %s  %-*s  %s", th.Badge(h.Status), pad(h.Name, nameW), latW, h.Latency, h.Note)
			out = append(out, ansi.Truncate(line, width, "…"))
		}
	}
	return out
}

func pad(s string, w int) string { return s + strings.Repeat(" ", max(0, w-ansi.StringWidth(s))) }
