package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/capture"
)

// Bounds of a capture a probe takes of its own retry.
const (
	RetryCaptureDuration = 20 * time.Second
	RetryCapturePackets  = 2000
	RetryCaptureBytes    = 4 << 20
	armTimeout           = 15 * time.Second
)

// Capturing is a capture running in a node agent.
type Capturing struct {
	Agent probes.Agent
	Req   CaptureRequest
	stdin *io.PipeWriter
	pcap  armBuffer
	errb  bytes.Buffer
	done  chan struct{}
	err   error
}

// armBuffer collects the pcap stream and says when its file header came,
// which the agent writes once its socket and filter are in place.
type armBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	armed chan struct{}
	once  sync.Once
}

func (a *armBuffer) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, err := a.b.Write(p)
	if a.b.Len() >= 24 {
		a.once.Do(func() { close(a.armed) })
	}
	return n, err
}

func (a *armBuffer) bytes() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return bytes.Clone(a.b.Bytes())
}

// StartCapture starts a capture in node agent a and returns once it is
// capturing (or failed to start).
func StartCapture(ctx context.Context, env *probes.Env, a probes.Agent, req CaptureRequest) (*Capturing, error) {
	s, ok := env.Agents.(probes.Streamer)
	if !ok {
		return nil, errors.New("this run's agents cannot stream a capture")
	}
	line, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	c := &Capturing{Agent: a, Req: req, stdin: pw, pcap: armBuffer{armed: make(chan struct{})}, done: make(chan struct{})}
	go func() {
		c.err = s.Stream(ctx, a, "capture", pr, &c.pcap, &c.errb)
		_ = pr.Close()
		close(c.done)
	}()
	go func() { _, _ = pw.Write(append(line, '\n')) }()
	select {
	case <-c.pcap.armed:
		return c, nil
	case <-c.done:
		r := c.result()
		return nil, fmt.Errorf("capture on node %s did not start: %w", a.Node, r.Err)
	case <-time.After(armTimeout):
		_ = pw.Close()
		return nil, fmt.Errorf("capture on node %s did not start within %s", a.Node, armTimeout)
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Captured is what one capture saw.
type Captured struct {
	Node, Label, Iface string
	Stats              capture.Stats
	Pcap               []byte
	Err                error
}

// Stop ends the capture (the agent stops when its stdin closes) and returns
// what it captured.
func (c *Capturing) Stop() Captured {
	_ = c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
	return c.result()
}

func (c *Capturing) result() Captured {
	out := Captured{Node: c.Agent.Node, Pcap: c.pcap.bytes(), Err: c.err}
	lines := strings.Split(strings.TrimSpace(c.errb.String()), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var d CaptureDone
		if strings.HasPrefix(lines[i], "{") && json.Unmarshal([]byte(lines[i]), &d) == nil {
			out.Iface, out.Stats = d.Iface, d.Stats
			if d.Error != "" {
				out.Err = errors.New(d.Error)
			}
			return out
		}
	}
	if out.Err != nil {
		out.Err = fmt.Errorf("%w: %s", out.Err, strings.TrimSpace(c.errb.String()))
	}
	return out
}

// CapturePoint is one place a retry is captured.
type CapturePoint struct {
	Agent probes.Agent // a node agent
	Label string       // LabelPodVeth, LabelUplink (packets leave the node there), ...
	Req   CaptureRequest
}

// CaptureDuring captures at every point while retry runs, then stops them
// all. A point that fails to start is returned with its error; retry runs
// as long as one point captures.
func CaptureDuring(ctx context.Context, env *probes.Env, points []CapturePoint, retry func(ctx context.Context) error) ([]Captured, error) {
	running := make([]*Capturing, len(points))
	out := make([]Captured, len(points))
	started, errs := probes.FanOut(ctx, len(points), 0, func(ctx context.Context, i int) (*Capturing, error) {
		p := points[i]
		if p.Req.DurationMs == 0 {
			p.Req.DurationMs = int(RetryCaptureDuration / time.Millisecond)
		}
		if p.Req.MaxPackets == 0 {
			p.Req.MaxPackets, p.Req.MaxBytes = RetryCapturePackets, RetryCaptureBytes
		}
		return StartCapture(ctx, env, p.Agent, p.Req)
	})
	copy(running, started)
	any := false
	for i, err := range errs {
		out[i] = Captured{Node: points[i].Agent.Node, Label: points[i].Label, Err: err}
		any = any || err == nil
	}
	var retryErr error
	if any {
		retryErr = retry(ctx)
	}
	for i, c := range running {
		if c != nil {
			r := c.Stop()
			r.Label = points[i].Label
			out[i] = r
		}
	}
	return out, retryErr
}

// Save writes each capture's pcap into dir (created if needed) as
// <run>-<probe>-<node>-<iface>.pcap and returns the paths, "" where there
// was nothing to save.
func Save(dir, runID, probe string, caps []Captured) []string {
	paths := make([]string, len(caps))
	if dir == "" {
		return paths
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return paths
	}
	for i, c := range caps {
		if len(c.Pcap) < 24 {
			continue
		}
		name := fmt.Sprintf("%s-%s-%s-%s.pcap", runID, probe, c.Node, strings.ReplaceAll(orDash(c.Iface), "/", "_"))
		p := filepath.Join(dir, name)
		if os.WriteFile(p, c.Pcap, 0o644) == nil {
			paths[i] = p
		}
	}
	return paths
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// CaptureEvidence turns captures into evidence lines: what each captured, each
// flow that shows a problem in the words a person would use, how the
// captures differ from one to the next (dropped on the node), and where the
// pcap was saved.
func CaptureEvidence(caps []Captured, paths []string, ctx capture.Context) []string {
	var ev []string
	var tables []*capture.Table
	for i, c := range caps {
		where := fmt.Sprintf("capture on node %s, %s %s", c.Node, c.Label, orDash(c.Iface))
		if c.Err != nil && len(c.Pcap) < 24 {
			ev = append(ev, where+": did not run: "+c.Err.Error())
			tables = append(tables, nil)
			continue
		}
		t, err := capture.Analyze(bytes.NewReader(c.Pcap), where, capture.ReadOptions{Iface: c.Node + "/" + orDash(c.Iface)})
		tables = append(tables, t)
		line := fmt.Sprintf("%s: %d packet(s), %d flow(s)", where, c.Stats.Packets, t.Len())
		if paths[i] != "" {
			line += "; pcap saved to " + paths[i] + " (tshark -r or Wireshark)"
		}
		if err != nil {
			line += "; " + err.Error()
		}
		ev = append(ev, line)
		cc := ctx
		cc.Uplink = c.Label == LabelUplink
		for n, r := range capture.ClassifyTable(t, cc) {
			if n == maxFlowLines {
				ev = append(ev, fmt.Sprintf("  … %d more flow(s) in the pcap", t.Len()-n))
				break
			}
			for _, f := range r.Findings {
				ev = append(ev, fmt.Sprintf("  %s %s: %s", c.Node, orDash(c.Iface), f.Sentence))
			}
		}
	}
	for i := 0; i+1 < len(tables); i++ {
		if tables[i] == nil || tables[i+1] == nil {
			continue
		}
		for _, d := range capture.Compare(tables[i], tables[i+1]) {
			ev = append(ev, fmt.Sprintf("  %s → %s: %s", caps[i].Label, caps[i+1].Label, d.Sentence))
		}
	}
	return ev
}

// Capture point labels.
const (
	LabelPodVeth = "pod veth"
	LabelUplink  = "uplink"
	LabelBridge  = "bridge"
	LabelNodeIn  = "node ingress"
)

// maxFlowLines bounds the flows one capture lists in evidence.
const maxFlowLines = 8

// PodVeth is the capture request for the host side of a pod agent's eth0:
// the pod reads its eth0's iflink, the peer's index in the node's namespace.
func PodVeth(ctx context.Context, env *probes.Env, pod probes.Agent, filter capture.FilterSpec) (CaptureRequest, error) {
	const iflink = "/sys/class/net/eth0/iflink"
	resp, err := env.Agents.Exec(ctx, pod, ops.Request{Ops: []ops.Op{{Kind: ops.ReadFiles, Paths: []string{iflink}}}})
	if err != nil {
		return CaptureRequest{}, err
	}
	v, ok := resp.Results[0].Files[iflink]
	idx, err := strconv.Atoi(strings.TrimSpace(v))
	if !ok || err != nil || idx <= 0 {
		return CaptureRequest{}, fmt.Errorf("%s: %s reads %q", pod.Ref(), iflink, v)
	}
	return CaptureRequest{IfIndex: idx, Filter: filter}, nil
}

// Enabled reports whether the run captures its failing paths (--capture).
func Enabled(env *probes.Env) bool {
	_, streams := env.Agents.(probes.Streamer)
	return streams && env.Options.Capture != "off"
}
