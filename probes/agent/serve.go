// Package agent is netsleuth's in-cluster agent: the netsleuth binary runs
// as `netsleuth agent serve` in a pod (echo listeners and /healthz) and
// `netsleuth agent exec` runs operations (package ops) sent as JSON on
// stdin. The Manager creates agent pods for a run, execs into them through
// the API server and deletes them afterwards; StartAgents and the findings
// helpers give probes one way to use them.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// Ports a pod-network agent listens on.
const (
	EchoPort = 8765 // TCP and UDP echo
	HTTPPort = 8766 // GET /healthz, GET / answers Banner
)

// Banner starts the HTTP answer of every agent, followed by its identity.
const Banner = "netsleuth-agent"

// Identity is how an agent names itself in its HTTP answer.
func Identity() string {
	return fmt.Sprintf("%s pod=%s node=%s", Banner, os.Getenv("POD_NAME"), os.Getenv("NODE_NAME"))
}

// Serve runs the echo and HTTP listeners until ctx ends. With listen false
// it only waits (node agents open no ports on the host).
func Serve(ctx context.Context, echoPort, httpPort int, listen bool) error {
	if !listen {
		<-ctx.Done()
		return nil
	}
	tl, err := net.Listen("tcp", ":"+strconv.Itoa(echoPort))
	if err != nil {
		return fmt.Errorf("listen tcp echo: %w", err)
	}
	ul, err := net.ListenPacket("udp", ":"+strconv.Itoa(echoPort))
	if err != nil {
		tl.Close()
		return fmt.Errorf("listen udp echo: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, Identity()+"\n") })
	srv := &http.Server{Addr: ":" + strconv.Itoa(httpPort), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go serveTCPEcho(tl)
	go serveUDPEcho(ul)
	go func() {
		<-ctx.Done()
		tl.Close()
		ul.Close()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("listen http: %w", err)
	}
	return nil
}

func serveTCPEcho(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.Copy(c, io.LimitReader(c, 1<<16))
		}()
	}
}

func serveUDPEcho(pc net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo(buf[:n], addr)
	}
}

// HostRootEnv names the environment variable that tells `agent exec` where
// the host's root is mounted (node agents).
const HostRootEnv = "NETSLEUTH_HOST_ROOT"

// ExecTimeout bounds one `agent exec`.
const ExecTimeout = 60 * time.Second

// Exec reads one ops.Request as JSON from in, runs it and writes the
// ops.Response as JSON to out.
func Exec(ctx context.Context, in io.Reader, out io.Writer) error {
	var req ops.Request
	if err := json.NewDecoder(io.LimitReader(in, 1<<20)).Decode(&req); err != nil {
		return fmt.Errorf("reading the request from stdin: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, ExecTimeout)
	defer cancel()
	resp := ops.Run(ctx, req, ops.Env{HostRoot: os.Getenv(HostRootEnv)})
	return json.NewEncoder(out).Encode(resp)
}
