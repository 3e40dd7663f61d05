// Package flows renders the packet captures a finding carries as a table:
// where each capture ran, then one row per classified flow with its
// classification (tcp-no-reply, source-not-translated, ...) in a column of
// its own. It reads the capture evidence lines the probes write:
//
//	capture on node N, pod veth vethX: 4 packet(s), 2 flow(s); pcap saved to …
//	  N vethX: SYN with no reply (2 SYNs to 192.168.2.10:80, nothing back)
//	  pod veth → uplink: request seen on vethX, never left on eth0 (…)
package flows

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/netsleuth/netsleuth/ui/theme"
)

// Capture is one capture point.
type Capture struct {
	Node, Point, Iface string
	Summary            string // "4 packet(s), 2 flow(s)", or why it did not run
	Pcap               string // where the pcap was saved, when it was
}

// Flow is one classified flow (or a difference between two captures).
type Flow struct {
	Where string // "nsl-node1 vethf62c" or "pod veth → uplink"
	Class string // the verdict's short ID
	What  string // the sentence
}

// Problem reports whether the flow's class points at a fault.
func (f Flow) Problem() bool { return !okClasses[f.Class] }

// Table is every capture of a finding.
type Table struct {
	Captures []Capture
	Flows    []Flow
	More     []string // "… 3 more flow(s) in the pcap"
}

// Empty reports whether the evidence held no capture.
func (t Table) Empty() bool { return len(t.Captures) == 0 }

var (
	captureRE = regexp.MustCompile(`^capture on node (\S+), (pod veth|uplink|bridge|node ingress) (\S+): (.*)$`)
	flowRE    = regexp.MustCompile(`^  (\S+ \S+|[a-z ]+ → [a-z ]+): (.*)$`)
)

// IsCaptureLine reports whether an evidence line belongs to a capture.
func IsCaptureLine(l string) bool {
	return captureRE.MatchString(l) || (strings.HasPrefix(l, "  ") && (flowRE.MatchString(l) || strings.HasPrefix(l, "  … ")))
}

// Parse picks the capture lines out of a finding's evidence.
func Parse(evidence []string) Table {
	var t Table
	for _, l := range evidence {
		if m := captureRE.FindStringSubmatch(l); m != nil {
			c := Capture{Node: m[1], Point: m[2], Iface: m[3], Summary: m[4]}
			if s, p, ok := strings.Cut(m[4], "; pcap saved to "); ok {
				c.Summary = s
				c.Pcap, _, _ = strings.Cut(p, " (")
			}
			t.Captures = append(t.Captures, c)
			continue
		}
		if len(t.Captures) == 0 {
			continue
		}
		if strings.HasPrefix(l, "  … ") {
			t.More = append(t.More, strings.TrimSpace(l))
			continue
		}
		if m := flowRE.FindStringSubmatch(l); m != nil {
			t.Flows = append(t.Flows, Flow{Where: m[1], Class: Classify(m[2]), What: m[2]})
		}
	}
	return t
}

// classes maps the start of a capture sentence to its verdict ID, in the
// order they must be tried.
var classes = []struct{ prefix, class string }{
	{"SYN with no reply", "tcp-no-reply"},
	{"SYN answered by RST", "tcp-refused"},
	{"SYN answered without SYN-ACK", "tcp-mid-stream"},
	{"SYN-ACK from", "tcp-handshake-stalled"},
	{"connection established, reset", "tcp-reset"},
	{"connection established", "tcp-established"},
	{"TCP without a handshake", "tcp-mid-stream"},
	{"ICMP fragmentation needed", "icmp-frag-needed"},
	{"ICMP packet too big", "icmp-frag-needed"},
	{"ICMP time exceeded", "icmp-time-exceeded"},
	{"ICMP echo unanswered", "echo-unanswered"},
	{"ICMP echo answered", "echo-answered"},
	{"ICMP messages", "icmp-messages"},
	{"ICMP ", "icmp-unreachable"},
	{"DNS query for", "dns-no-answer"},
	{"DNS NXDOMAIN", "dns-nxdomain"},
	{"DNS SERVFAIL", "dns-servfail"},
	{"DNS answered", "dns-answered"},
	{"DNS ", "dns-error"},
	{"UDP with no reply", "udp-no-reply"},
	{"UDP both ways", "udp-answered"},
	{"source not translated", "source-not-translated"},
	{"reply seen on", "reply-dropped"},
	{"request seen on", "request-not-forwarded"},
}

var okClasses = map[string]bool{"tcp-established": true, "dns-answered": true, "udp-answered": true,
	"echo-answered": true, "icmp-messages": true, "other-traffic": true, "tcp-mid-stream": true}

// Classify names the verdict a capture sentence states.
func Classify(sentence string) string {
	for _, c := range classes {
		if strings.HasPrefix(sentence, c.prefix) {
			return c.class
		}
	}
	return "other-traffic"
}

// Render draws the table: the capture points, then a row per flow. Rows are
// never wrapped, so they stay rows; the detail pane scrolls them sideways.
// width only bounds the WHERE column.
func Render(t Table, th *theme.Theme, width int) []string {
	var out []string
	for _, c := range t.Captures {
		out = append(out, fmt.Sprintf("%s %s %s on %s: %s", th.Render(th.Label, "capture"), c.Point, c.Iface, c.Node, c.Summary))
		if c.Pcap != "" {
			out = append(out, th.Render(th.Faint, "  pcap: "+c.Pcap))
		}
	}
	if len(t.Flows) == 0 {
		return append(out, t.More...)
	}
	whereW, classW := len("WHERE"), len("CLASSIFICATION")
	for _, f := range t.Flows {
		whereW = max(whereW, ansi.StringWidth(f.Where))
		classW = max(classW, len(f.Class))
	}
	whereW = min(whereW, max(12, width/3))
	head := fmt.Sprintf("  %-*s  %-*s  %s", whereW, "WHERE", classW+2, "CLASSIFICATION", "WHAT")
	out = append(out, th.Render(th.Label, head))
	for _, f := range t.Flows {
		mark := "✓"
		if f.Problem() {
			mark = "✗"
		}
		cls := mark + " " + f.Class
		if f.Problem() {
			cls = th.Render(th.Error, cls)
		}
		row := fmt.Sprintf("  %s  %s  %s", padCut(f.Where, whereW), cls+strings.Repeat(" ", classW-len(f.Class)), f.What)
		out = append(out, row)
	}
	return append(out, t.More...)
}

func padCut(s string, w int) string {
	s = ansi.Truncate(s, w, "…")
	return s + strings.Repeat(" ", w-ansi.StringWidth(s))
}
