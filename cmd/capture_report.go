package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/netsleuth/netsleuth/probes/capture"
)

// captureReport is what `netsleuth capture` prints.
type captureReport struct {
	Source, Node, Iface string
	Stats               *capture.Stats
	Table               *capture.Table
	Pcap                string
	Context             capture.Context
}

// flowJSON is one flow in the JSON output.
type flowJSON struct {
	Proto      string    `json:"proto"`
	Client     string    `json:"client"`
	Server     string    `json:"server"`
	PacketsOut uint32    `json:"packetsOut"`
	PacketsIn  uint32    `json:"packetsIn"`
	Bytes      uint64    `json:"bytes"`
	FlagsOut   string    `json:"flagsOut,omitempty"`
	FlagsIn    string    `json:"flagsIn,omitempty"`
	Retrans    uint32    `json:"retransmissions,omitempty"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
	Verdicts   []string  `json:"verdicts"`
	Problem    bool      `json:"problem"`
	Sentences  []string  `json:"sentences"`
	DNS        *dnsJSON  `json:"dns,omitempty"`
	// RepliesSeenAs is set when the replies were seen on the interface with
	// the other side of an address translation ("from → to"): the flow was
	// joined from its two halves.
	RepliesSeenAs string `json:"repliesSeenAs,omitempty"`
}

type dnsJSON struct {
	Question string   `json:"question"`
	Rcode    string   `json:"rcode,omitempty"`
	Answers  []string `json:"answers,omitempty"`
	Queries  int      `json:"queries"`
	Replies  int      `json:"replies"`
}

// report prints the flow table and verdicts; any flow that shows a problem
// makes the command exit 1.
func (o *CaptureOptions) report(r captureReport) error {
	results := capture.ClassifyTable(r.Table, r.Context)
	problem := false
	for _, res := range results {
		for _, f := range res.Findings {
			problem = problem || f.Verdict.Problem()
		}
	}
	var err error
	if o.Output == "json" {
		err = writeCaptureJSON(o.Out, r, results)
	} else {
		err = writeCaptureText(o.Out, r, results)
	}
	if err != nil {
		return &exitError{code: ExitFailing, msg: oneLine(err.Error()), err: err}
	}
	if problem {
		return &exitError{code: ExitFailing}
	}
	return nil
}

func writeCaptureText(w io.Writer, r captureReport, results []capture.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "capture: %s", r.Source)
	if r.Stats != nil {
		fmt.Fprintf(&b, ": %d packet(s), stopped by %s", r.Stats.Packets, r.Stats.Stopped)
		if r.Stats.KernelDrops > 0 || r.Stats.DroppedByBound > 0 {
			fmt.Fprintf(&b, " (%d dropped by the kernel, %d over the bounds)", r.Stats.KernelDrops, r.Stats.DroppedByBound)
		}
	}
	fmt.Fprintf(&b, "; %d flow(s)\n", r.Table.Len())
	if r.Pcap != "" {
		fmt.Fprintf(&b, "pcap saved to %s (tshark -r %s, or Wireshark)\n", r.Pcap, r.Pcap)
	}
	b.WriteString("\n")
	writeFlowTable(&b, r.Table, r.Context)
	b.WriteString("\nwhat the flows show:\n")
	for _, res := range results {
		for _, f := range res.Findings {
			mark := "  ok   "
			if f.Verdict.Problem() {
				mark = "  FAIL "
			}
			fmt.Fprintf(&b, "%s%s\n", mark, f.Sentence)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFlowTable renders the flows as aligned columns.
func writeFlowTable(b *strings.Builder, t *capture.Table, ctx capture.Context) {
	tw := tabwriter.NewWriter(b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROTO\tCLIENT\tSERVER\tPKTS →/←\tBYTES\tFLAGS →/←\tVERDICT")
	for _, res := range capture.ClassifyTable(t, ctx) {
		f := res.Flow
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%s/%s\t%s\n", f.Proto(), f.Client(), f.Server(), f.Fwd.Packets, f.Rev.Packets,
			f.Bytes(), orDash(f.Fwd.Flags.String()), orDash(f.Rev.Flags.String()), res.Findings[0].Verdict)
	}
	_ = tw.Flush()
}

func writeCaptureJSON(w io.Writer, r captureReport, results []capture.Result) error {
	out := struct {
		Source string         `json:"source"`
		Node   string         `json:"node,omitempty"`
		Iface  string         `json:"iface,omitempty"`
		Stats  *capture.Stats `json:"stats,omitempty"`
		Pcap   string         `json:"pcap,omitempty"`
		Flows  []flowJSON     `json:"flows"`
	}{Source: r.Source, Node: r.Node, Iface: r.Iface, Stats: r.Stats, Pcap: r.Pcap, Flows: []flowJSON{}}
	for _, res := range results {
		f := res.Flow
		j := flowJSON{Proto: f.Proto().String(), Client: f.Client().String(), Server: f.Server().String(),
			PacketsOut: f.Fwd.Packets, PacketsIn: f.Rev.Packets, Bytes: f.Bytes(), FlagsOut: f.Fwd.Flags.String(), FlagsIn: f.Rev.Flags.String(),
			Retrans: f.Retransmits(), First: f.First(), Last: f.Last()}
		if from, to, ok := f.RepliesSeenAs(); ok {
			j.RepliesSeenAs = from.String() + " → " + to.String()
		}
		for _, fd := range res.Findings {
			j.Verdicts = append(j.Verdicts, fd.Verdict.String())
			j.Sentences = append(j.Sentences, fd.Sentence)
			j.Problem = j.Problem || fd.Verdict.Problem()
		}
		if d := f.DNS; d != nil {
			j.DNS = &dnsJSON{Question: d.Name, Rcode: d.Rcode.String(), Queries: int(d.Queries), Replies: int(d.Responses)}
			for _, a := range d.Answers() {
				j.DNS.Answers = append(j.DNS.Answers, a.String())
			}
		}
		out.Flows = append(out.Flows, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
