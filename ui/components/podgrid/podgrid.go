// Package podgrid renders pod-to-pod's measurements as a node × node grid:
// a row per source node, a column per destination node, the same-node pairs
// on the diagonal. It reads the pair lines the agents write:
//
//	pod agent NS/POD (10.244.0.6) on node nsl-node1 → TCP connect 10.244.1.6:8765 (…): ok (1/1 answered, avg 3.77 ms) …
//
// A destination that is no pod agent of the matrix is the peer agent on the
// source's own node (pod-to-pod sends to every other node's pod agent and to
// its own node's peer).
package podgrid

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// Probe is the probe whose findings the grid reads.
const Probe = "pod-to-pod"

// Result is one measurement.
type Result struct {
	Proto   string // TCP, UDP, ICMP
	Outcome string // ok, timeout, connection refused, …
	Ms      float64
	HasMs   bool
}

// OK reports whether the measurement got through.
func (r Result) OK() bool {
	return r.Outcome == string(ops.OK) || r.Outcome == string(ops.PartialLoss)
}

// neutral results say nothing about the path (the agent could not send).
func (r Result) neutral() bool { return r.Outcome == string(ops.PermissionDeny) }

// Grid is the matrix.
type Grid struct {
	Nodes []string
	cells map[[2]string][]Result
}

// Cell returns the measurements from node a to node b.
func (g Grid) Cell(a, b string) []Result { return g.cells[[2]string{a, b}] }

// Empty reports whether no pair line was found.
func (g Grid) Empty() bool { return len(g.cells) == 0 }

var pairRE = regexp.MustCompile(`^(pod|peer) agent \S+ \(([0-9.]+)\) on node (\S+) → (TCP connect|UDP echo|ICMP echo) ([0-9.]+)\S* .*?\): (.*)$`)
var avgRE = regexp.MustCompile(`avg ([0-9.]+) ms`)

// IsPairLine reports whether an evidence line is one the grid reads.
func IsPairLine(l string) bool { return pairRE.MatchString(l) }

type pair struct {
	srcIP, srcNode, dst string
	r                   Result
}

// Parse reads the pair lines of evidence (several findings' evidence may be
// joined); other lines are ignored.
func Parse(evidence []string) Grid {
	var pairs []pair
	nodeOf := map[string]string{}
	seen := map[string]bool{}
	for _, l := range evidence {
		m := pairRE.FindStringSubmatch(l)
		if m == nil || seen[l] {
			continue
		}
		seen[l] = true
		p := pair{srcIP: m[2], srcNode: m[3], dst: m[5], r: Result{Proto: strings.Fields(m[4])[0], Outcome: outcome(m[6])}}
		if a := avgRE.FindStringSubmatch(m[6]); a != nil {
			p.r.Ms, _ = strconv.ParseFloat(a[1], 64)
			p.r.HasMs = true
		}
		if m[1] == "pod" {
			nodeOf[p.srcIP] = p.srcNode
		}
		pairs = append(pairs, p)
	}
	g := Grid{cells: map[[2]string][]Result{}}
	for _, p := range pairs {
		dst, ok := nodeOf[p.dst]
		if !ok {
			dst = p.srcNode // the peer on the source's node
		}
		for _, n := range []string{p.srcNode, dst} {
			if !slices.Contains(g.Nodes, n) {
				g.Nodes = append(g.Nodes, n)
			}
		}
		k := [2]string{p.srcNode, dst}
		g.cells[k] = append(g.cells[k], p.r)
	}
	slices.Sort(g.Nodes)
	return g
}

// outcome is the ops outcome a result line starts with.
func outcome(s string) string {
	for _, o := range ops.Outcomes {
		if strings.HasPrefix(s, string(o)) {
			return string(o)
		}
	}
	w, _, _ := strings.Cut(s, " ")
	return w
}

// cellText summarises a cell: the TCP verdict and latency, and the other
// protocols that disagree with it.
func cellText(rs []Result) (string, bool) {
	if len(rs) == 0 {
		return "–", true
	}
	var tcp *Result
	for i := range rs {
		if rs[i].Proto == "TCP" && (tcp == nil || !rs[i].OK()) {
			tcp = &rs[i]
		}
	}
	ok := tcp == nil || tcp.OK()
	s := "✓ ok"
	switch {
	case tcp == nil:
		s = "? no TCP"
	case !tcp.OK():
		s = "✗ " + tcp.Outcome
	case tcp.HasMs:
		s = fmt.Sprintf("✓ %.2f ms", tcp.Ms)
	}
	var off []string
	for _, r := range rs {
		if r.Proto != "TCP" && !r.OK() && !r.neutral() && !slices.Contains(off, strings.ToLower(r.Proto)) {
			off = append(off, strings.ToLower(r.Proto))
		}
	}
	if len(off) > 0 {
		s += " (" + strings.Join(off, ",") + " ✗)"
		if ok {
			s = "!" + s[len("✓"):]
		}
	}
	return s, ok
}

// Render draws the grid: a header row of destination nodes, then a row per
// source node; the diagonal (same node) is marked.
func Render(g Grid, th *theme.Theme, width int) []string {
	if g.Empty() {
		return nil
	}
	texts := map[[2]string]string{}
	oks := map[[2]string]bool{}
	colW := 0
	for _, a := range g.Nodes {
		for _, b := range g.Nodes {
			t, ok := cellText(g.Cell(a, b))
			if a == b {
				t += " same"
			}
			texts[[2]string{a, b}], oks[[2]string{a, b}] = t, ok
			colW = max(colW, ansi.StringWidth(t), ansi.StringWidth(b))
		}
	}
	rowW := len("from \\ to")
	for _, n := range g.Nodes {
		rowW = max(rowW, ansi.StringWidth(n))
	}
	out := []string{th.Render(th.Faint, "TCP connect from the row's node to the column's (same node on the diagonal)")}
	head := padTo("from \\ to", rowW)
	for _, b := range g.Nodes {
		head += "  " + padTo(b, colW)
	}
	out = append(out, th.Render(th.Label, strings.TrimRight(head, " ")))
	for _, a := range g.Nodes {
		line := th.Render(th.Label, padTo(a, rowW))
		for _, b := range g.Nodes {
			t := padTo(texts[[2]string{a, b}], colW)
			if !oks[[2]string{a, b}] {
				t = th.Render(th.Error, t)
			}
			line += "  " + t
		}
		out = append(out, strings.TrimRight(line, " "))
	}
	return out
}

func padTo(s string, w int) string {
	return s + strings.Repeat(" ", max(0, w-ansi.StringWidth(s)))
}
