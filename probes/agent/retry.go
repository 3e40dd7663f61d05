package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/capture"
)

// Retry is a probe's capture of its own retry of a failing path: where on
// the path to capture, what, and the retry itself.
type Retry struct {
	Probe string // the probe's ID, in the saved pcaps' names
	// What names the retry in the announcement, e.g. "a retry of pod a → pod b".
	What   string
	Filter capture.FilterSpec
	// At are the capture points in path order, nearest the client first:
	// how captures differ from one to the next says where packets stopped.
	At      []Point
	Context capture.Context
	// Do sends the retry once every point captures.
	Do func(ctx context.Context) error
}

// Point is one place a retry is captured, on a node: a pod agent's
// host-side veth (Pod), the interface that holds an address (Carrying, the
// node's uplink for its own address), or the interface the node's route to
// an address leaves by (RouteTo).
type Point struct {
	Node     string
	Label    string
	Pod      *probes.Agent
	Carrying string
	RouteTo  string
}

// CaptureOn captures a retry: it starts the node agents of the points'
// nodes (announced; a run reuses them), captures at every point while Do
// runs, saves the pcaps under --capture-dir and returns the evidence: what
// each point captured, the classification of its flows, how consecutive
// points differ, where each pcap was saved, and why a point or the retry
// failed.
func CaptureOn(ctx context.Context, env *probes.Env, rec probes.Recorder, r Retry) []string {
	var nodes []string
	for _, p := range r.At {
		if !slices.Contains(nodes, p.Node) {
			nodes = append(nodes, p.Node)
		}
	}
	started, failed, err := StartNodes(ctx, env, rec, "capture "+r.What, nodes)
	if err != nil {
		return []string{"capture: the node agents did not start: " + err.Error()}
	}
	if len(failed) > 0 {
		return []string{fmt.Sprintf("capture: the node agent on %s did not start: %v", failed[0].Node, failed[0].Err)}
	}
	byNode := map[string]probes.Agent{}
	for _, a := range started {
		byNode[a.Node] = a
	}
	var points []CapturePoint
	var labels []string
	for _, p := range r.At {
		req := CaptureRequest{Filter: r.Filter, Carrying: p.Carrying, RouteTo: p.RouteTo}
		if p.Pod != nil {
			v, err := PodVeth(ctx, env, *p.Pod, r.Filter)
			if err != nil {
				return []string{"capture: the pod's veth was not found: " + err.Error()}
			}
			req = v
		}
		points = append(points, CapturePoint{Agent: byNode[p.Node], Label: p.Label, Req: req})
		labels = append(labels, p.Label+" on "+p.Node)
	}
	rec.Stage(fmt.Sprintf("capturing %s at the %s", r.What, strings.Join(labels, ", the ")))
	caps, err := CaptureDuring(ctx, env, points, r.Do)
	ev := CaptureEvidence(caps, Save(env.Options.CaptureDir, env.RunID, r.Probe, caps), r.Context)
	if err != nil {
		ev = append(ev, "capture: the retry failed: "+err.Error())
	}
	return ev
}
