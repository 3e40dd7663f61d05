// Command labecho is a small static test server for netsleuth lab workloads
// and test hosts.
//
//	labecho [--http ADDR]... [--tcp-echo ADDR]... [--udp-echo ADDR]...
//
// --http serves "netsleuth-labecho <hostname> <remote addr>\n" with status 200
// on every path except /healthz, which returns "ok\n". --tcp-echo and
// --udp-echo echo back whatever they receive. Every flag may be repeated;
// with no flags labecho serves HTTP on :80. One line is logged to stderr per
// listener started. SIGTERM or SIGINT shuts down gracefully (exit status 0).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// shutdownTimeout bounds how long in-flight HTTP requests may take to finish.
const shutdownTimeout = 5 * time.Second

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// server is one listener of a given kind.
type server interface {
	kind() string
	addr() string
	serve() error                 // blocks; returns nil after shutdown
	shutdown(ctx context.Context) // stops serving and closes connections
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "labecho:", err)
		os.Exit(1)
	}
}

// run starts the servers named by args, calls ready (if not nil) with each
// server's kind ("http", "tcp-echo", "udp-echo") and bound address, and
// serves until ctx is done or a server fails.
func run(ctx context.Context, args []string, logw io.Writer, ready func(kind, addr string)) error {
	servers, err := listen(args, logw)
	if err != nil {
		return err
	}
	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for _, s := range servers {
		fmt.Fprintf(logw, "labecho: %s listening on %s\n", s.kind(), s.addr())
		if ready != nil {
			ready(s.kind(), s.addr())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.serve(); err != nil {
				errc <- fmt.Errorf("%s on %s: %w", s.kind(), s.addr(), err)
			}
		}()
	}
	select {
	case <-ctx.Done():
		err = nil
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, s := range servers {
		s.shutdown(sctx)
	}
	wg.Wait()
	return err
}

// listen parses args and binds every requested listener, closing those
// already bound if one fails.
func listen(args []string, logw io.Writer) ([]server, error) {
	var httpAddrs, tcpAddrs, udpAddrs listFlag
	fs := flag.NewFlagSet("labecho", flag.ContinueOnError)
	fs.SetOutput(logw)
	fs.Var(&httpAddrs, "http", "serve HTTP on `ADDR` (repeatable; default :80 when no flag is given)")
	fs.Var(&tcpAddrs, "tcp-echo", "run a TCP echo server on `ADDR` (repeatable)")
	fs.Var(&udpAddrs, "udp-echo", "run a UDP echo server on `ADDR` (repeatable)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if len(httpAddrs)+len(tcpAddrs)+len(udpAddrs) == 0 {
		httpAddrs = listFlag{":80"}
	}
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "unknown"
	}
	var servers []server
	add := func(s server, err error) error {
		if err == nil {
			servers = append(servers, s)
		}
		return err
	}
	for _, a := range httpAddrs {
		err = errors.Join(err, add(newHTTP(a, hostname)))
	}
	for _, a := range tcpAddrs {
		err = errors.Join(err, add(newTCPEcho(a)))
	}
	for _, a := range udpAddrs {
		err = errors.Join(err, add(newUDPEcho(a)))
	}
	if err != nil {
		for _, s := range servers {
			s.shutdown(context.Background())
		}
		return nil, err
	}
	return servers, nil
}
