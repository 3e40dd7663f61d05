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
	// SysRoot is where read-files looks up its paths (the readable set);
	// "" means /. Tests give a directory holding proc/ and sys/.
	SysRoot string
}

// Check is what Run refuses: a request Validate refuses, or one whose
// read-files paths lead out of the readable set through symbolic links.
func (env Env) Check(req Request) error {
	if err := req.Validate(); err != nil {
		return err
	}
	for i, o := range req.Ops {
		if o.Kind != ReadFiles {
			continue
		}
		for _, p := range o.Paths {
			if err := env.checkLinks(p); err != nil {
				return refuse("op %d (%.40q): %v", i, o.Kind, err)
			}
		}
	}
	return nil
}

// Run runs every op of req concurrently and returns their results in order.
// A request Check refuses runs nothing: the response carries the refusal
// as Error and no results.
func Run(ctx context.Context, req Request, env Env) Response { return RunEach(ctx, req, env, nil) }

// RunEach is Run that also calls each, when it is not nil, with every op's
// index and result as the op finishes (from the op's goroutine).
func RunEach(ctx context.Context, req Request, env Env, each func(int, Result)) Response {
	if env.ProcRoot == "" {
		env.ProcRoot = "/proc"
	}
	var resp Response
	resp.Hostname, _ = os.Hostname()
	resp.Addrs = localAddrs()
	if err := env.Check(req); err != nil {
		resp.Error = err.Error()
		return resp
	}
	resp.Results = make([]Result, len(req.Ops))
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i, o := range req.Ops {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			resp.Results[i] = runOp(ctx, o, env)
			if each != nil {
				each(i, resp.Results[i])
			}
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
		return runReadFiles(o, env)
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
