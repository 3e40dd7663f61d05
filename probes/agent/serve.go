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
	"sync"
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
// ops.Response as JSON to out; a Progress request has each op's result
// written first, one ops.Progress line as it finishes. A request the agent
// refuses (ops.DecodeRequest, ops.Env.Check: too large, not one JSON
// request, an unknown op, a bound exceeded, a file outside the readable
// set) runs nothing: the response carries the refusal as its error and
// Exec returns it as an *ops.Refusal, so `agent exec` exits non-zero.
func Exec(ctx context.Context, in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out)
	var mu sync.Mutex // the ops' goroutines write their lines one at a time
	var werr error
	each := func(i int, r ops.Result) {
		mu.Lock()
		defer mu.Unlock()
		if werr == nil {
			werr = enc.Encode(ops.Progress{Op: i, Result: r})
		}
	}
	resp, err := exec1(ctx, in, each)
	mu.Lock()
	defer mu.Unlock()
	if werr == nil {
		werr = enc.Encode(resp)
	}
	if werr != nil {
		return errors.Join(err, fmt.Errorf("writing the response: %w", werr))
	}
	return err
}

func exec1(ctx context.Context, in io.Reader, each func(int, ops.Result)) (ops.Response, error) {
	env := ops.Env{HostRoot: os.Getenv(HostRootEnv)}
	req, err := ops.DecodeRequest(in)
	if err == nil {
		err = env.Check(req)
	}
	if err != nil {
		resp := ops.Response{Error: err.Error()}
		resp.Hostname, _ = os.Hostname()
		return resp, err
	}
	ctx, cancel := context.WithTimeout(ctx, ExecTimeout)
	defer cancel()
	if !req.Progress {
		each = nil
	}
	return ops.RunEach(ctx, req, env, each), nil
}
