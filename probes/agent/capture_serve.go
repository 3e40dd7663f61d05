package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

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

// maxCaptureRequest bounds the request line.
const maxCaptureRequest = 64 << 10

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
	var req CaptureRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return fmt.Errorf("the capture request is not JSON: %w", err)
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
