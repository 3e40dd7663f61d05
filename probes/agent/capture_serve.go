package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/capture"
)

// CaptureRequest is what `netsleuth agent capture` reads as its first line
// of stdin: where to capture, what, and the bounds. The interface is named,
// or given by index (a pod's host-side veth, from the pod's eth0 iflink), or
// the one the node's route to RouteTo leaves by.
type CaptureRequest struct {
	Iface      string             `json:"iface,omitempty"`
	IfIndex    int                `json:"ifIndex,omitempty"`
	RouteTo    string             `json:"routeTo,omitempty"`
	Carrying   string             `json:"carrying,omitempty"` // the interface holding this address (the node's uplink)
	Filter     capture.FilterSpec `json:"filter"`
	SnapLen    int                `json:"snapLen,omitempty"`
	MaxPackets int                `json:"maxPackets,omitempty"`
	MaxBytes   int64              `json:"maxBytes,omitempty"`
	DurationMs int                `json:"durationMs,omitempty"`
}

// CaptureDone is the last line `netsleuth agent capture` writes to stderr:
// the interface it used, its stats, or why it failed.
type CaptureDone struct {
	Iface string        `json:"iface"`
	Stats capture.Stats `json:"stats"`
	Error string        `json:"error,omitempty"`
}

// Bounds of a capture request; the agent refuses one beyond them.
const (
	maxCaptureRequest = 64 << 10 // the request line
	MaxCapturePackets = 10_000_000
	MaxCaptureBytes   = 16 << 30
	maxSnapLen        = capture.FilterSnapLen
)

// Validate checks a capture request as the agent reads it, before it opens
// anything: exactly one way to name the interface, an interface name the
// kernel would take (ValidIfaceName), addresses that parse, a filter that
// compiles, and bounds in range. Its error is one sentence.
func (r CaptureRequest) Validate() error {
	named := 0
	for _, set := range []bool{r.Iface != "", r.IfIndex != 0, r.RouteTo != "", r.Carrying != ""} {
		if set {
			named++
		}
	}
	maxMs := int(capture.MaxDuration / time.Millisecond)
	switch {
	case named != 1:
		return &ops.Refusal{Reason: "the capture request must name its interface exactly one way (iface, ifIndex, routeTo or carrying)"}
	case r.Iface != "" && !ValidIfaceName(r.Iface):
		return &ops.Refusal{Reason: fmt.Sprintf("interface name %.40q is not one the kernel takes (1 to 15 bytes, no \"/\", \":\" or spaces, not \".\" or \"..\")", r.Iface)}
	case r.IfIndex < 0:
		return &ops.Refusal{Reason: fmt.Sprintf("interface index %d is negative", r.IfIndex)}
	case r.RouteTo != "" && !isAddr(r.RouteTo):
		return &ops.Refusal{Reason: fmt.Sprintf("routeTo %.40q is not an IP address", r.RouteTo)}
	case r.Carrying != "" && !isAddr(r.Carrying):
		return &ops.Refusal{Reason: fmt.Sprintf("carrying %.40q is not an IP address", r.Carrying)}
	case r.SnapLen < 0 || r.SnapLen > maxSnapLen:
		return &ops.Refusal{Reason: fmt.Sprintf("snapLen %d is out of range; pass 0 (the default) to %d", r.SnapLen, maxSnapLen)}
	case r.MaxPackets < 0 || r.MaxPackets > MaxCapturePackets:
		return &ops.Refusal{Reason: fmt.Sprintf("maxPackets %d is out of range; pass 0 (the default) to %d", r.MaxPackets, MaxCapturePackets)}
	case r.MaxBytes < 0 || r.MaxBytes > MaxCaptureBytes:
		return &ops.Refusal{Reason: fmt.Sprintf("maxBytes %d is out of range; pass 0 (the default) to %d", r.MaxBytes, int64(MaxCaptureBytes))}
	case r.DurationMs < 0 || r.DurationMs > maxMs:
		return &ops.Refusal{Reason: fmt.Sprintf("durationMs %d is out of range; pass 0 (the default) to %d (%s)", r.DurationMs, maxMs, capture.MaxDuration)}
	}
	if _, err := r.Filter.Assemble(); err != nil {
		return &ops.Refusal{Reason: fmt.Sprintf("the capture filter: %v", err)}
	}
	return nil
}

// ValidIfaceName reports whether the kernel would take name for a network
// interface (dev_valid_name): 1 to 15 bytes, not "." or "..", without "/",
// ":" or white space.
func ValidIfaceName(name string) bool {
	return name != "" && len(name) < 16 && name != "." && name != ".." &&
		!strings.ContainsFunc(name, func(r rune) bool { return r == '/' || r == ':' || unicode.IsSpace(r) || r == 0 })
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// decodeCaptureRequest reads the request line: one JSON object with only
// the fields CaptureRequest knows, valid by Validate.
func decodeCaptureRequest(line []byte) (CaptureRequest, error) {
	var req CaptureRequest
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, &ops.Refusal{Reason: fmt.Sprintf("the capture request is not one JSON capture request (%s)", strings.Join(strings.Fields(err.Error()), " "))}
	}
	if dec.More() {
		return req, &ops.Refusal{Reason: "the capture request line has data after its JSON object"}
	}
	return req, req.Validate()
}

// CaptureMain runs one capture for the agent: the request from the first
// line of stdin, the pcap stream to stdout, a CaptureDone line to stderr.
// It stops at a bound, when ctx ends, or when stdin closes (the client is
// done with it), so a cut connection never leaves a capture running.
func CaptureMain(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	done := CaptureDone{}
	err := capture1(ctx, stdin, stdout, &done)
	if err != nil {
		done.Error = err.Error()
	}
	b, _ := json.Marshal(done)
	fmt.Fprintln(stderr, string(b))
	return err
}

func capture1(ctx context.Context, stdin io.Reader, stdout io.Writer, done *CaptureDone) error {
	br := bufio.NewReaderSize(io.LimitReader(stdin, maxCaptureRequest), maxCaptureRequest)
	line, err := br.ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the capture request: %w", err)
	}
	if len(line) == maxCaptureRequest && line[len(line)-1] != '\n' {
		return &ops.Refusal{Reason: fmt.Sprintf("the capture request line is longer than %d bytes", maxCaptureRequest)}
	}
	req, err := decodeCaptureRequest(line)
	if err != nil {
		return err
	}
	iface, err := resolveIface(req)
	if err != nil {
		return err
	}
	done.Iface = iface
	prog, err := req.Filter.Assemble()
	if err != nil {
		return fmt.Errorf("the capture filter: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin) // returns when the client closes stdin
		cancel()
	}()
	opts := capture.Options{Iface: iface, Filter: prog, SnapLen: req.SnapLen, MaxPackets: req.MaxPackets,
		MaxBytes: req.MaxBytes, Duration: time.Duration(req.DurationMs) * time.Millisecond}
	if opts.MaxPackets == 0 {
		opts.MaxPackets = capture.DefaultMaxPackets
	}
	if opts.Duration == 0 {
		opts.Duration = capture.DefaultDuration
	}
	done.Stats, err = capture.Capture(ctx, opts, stdout)
	return err
}

// resolveIface finds the interface a request names, in this network
// namespace (the node's, for a hostNetwork agent).
func resolveIface(req CaptureRequest) (string, error) {
	switch {
	case req.Iface != "":
		return req.Iface, nil
	case req.IfIndex > 0:
		ifc, err := net.InterfaceByIndex(req.IfIndex)
		if err != nil {
			return "", fmt.Errorf("no network interface with index %d on this node (the pod's veth is gone?): %w", req.IfIndex, err)
		}
		return ifc.Name, nil
	case req.Carrying != "":
		return ifaceCarrying(req.Carrying)
	case req.RouteTo != "":
		dst, err := netip.ParseAddr(req.RouteTo)
		if err != nil {
			return "", fmt.Errorf("routeTo %q is not an IP address", req.RouteTo)
		}
		raw, err := os.ReadFile("/proc/net/route")
		if err != nil {
			return "", err
		}
		routes, err := ops.ParseProcRoute(string(raw))
		if err != nil {
			return "", err
		}
		r, ok := ops.Lookup(routes, dst)
		if !ok || r.Iface == "" || r.Reject {
			return "", fmt.Errorf("this node has no route to %s to capture on", dst)
		}
		return r.Iface, nil
	}
	return "", errors.New("the capture request names no interface (iface, ifIndex or routeTo)")
}

// ifaceCarrying finds the interface that holds address addr.
func ifaceCarrying(addr string) (string, error) {
	want, err := netip.ParseAddr(addr)
	if err != nil {
		return "", fmt.Errorf("carrying %q is not an IP address", addr)
	}
	ifcs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifc := range ifcs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if pf, err := netip.ParsePrefix(a.String()); err == nil && pf.Addr() == want {
				return ifc.Name, nil
			}
		}
	}
	return "", fmt.Errorf("no interface on this node holds %s", want)
}
