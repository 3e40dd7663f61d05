package ops

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
)

// Env says where the agent finds host facts.
type Env struct {
	// HostRoot is the host's root filesystem ("/host" in a node agent), ""
	// in a pod-network agent.
	HostRoot string
	// ProcRoot is where /proc is mounted; "" means /proc.
	ProcRoot string
}

// MaxOps bounds one request.
const MaxOps = 256

// Run runs every op of req concurrently and returns their results in order.
func Run(ctx context.Context, req Request, env Env) Response {
	if env.ProcRoot == "" {
		env.ProcRoot = "/proc"
	}
	resp := Response{Results: make([]Result, len(req.Ops))}
	resp.Hostname, _ = os.Hostname()
	resp.Addrs = localAddrs()
	if len(req.Ops) > MaxOps {
		for i, o := range req.Ops {
			resp.Results[i] = Result{Op: o, Outcome: Failed, Error: fmt.Sprintf("request has %d ops, more than %d", len(req.Ops), MaxOps)}
		}
		return resp
	}
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i, o := range req.Ops {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			resp.Results[i] = runOp(ctx, o, env)
		})
	}
	wg.Wait()
	return resp
}

func runOp(ctx context.Context, o Op, env Env) Result {
	switch o.Kind {
	case TCP:
		return runTCP(ctx, o)
	case UDP:
		return runUDP(ctx, o)
	case ICMP:
		return runICMP(ctx, o)
	case HTTP:
		return runHTTP(ctx, o)
	case ReadFiles:
		return runReadFiles(o)
	case Routes:
		return runRoutes(o, env.ProcRoot)
	case IPTablesSave:
		return runIPTablesSave(ctx, o, env.HostRoot)
	case IPSetSave:
		return runIPSetSave(ctx, o, env.HostRoot)
	case DNS:
		return runDNS(ctx, o)
	}
	return Result{Op: o, Outcome: Failed, Error: fmt.Sprintf("unknown op %q", o.Kind)}
}

// localAddrs lists the agent's non-loopback IPv4 addresses.
func localAddrs() []string {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			out = append(out, n.IP.String())
		}
	}
	return out
}
