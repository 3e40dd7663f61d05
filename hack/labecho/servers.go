package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

type httpServer struct {
	ln  net.Listener
	srv *http.Server
}

func newHTTP(addr, hostname string) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "netsleuth-labecho %s %s\n", hostname, r.RemoteAddr)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return &httpServer{ln: ln, srv: srv}, nil
}

func (s *httpServer) kind() string { return "http" }
func (s *httpServer) addr() string { return s.ln.Addr().String() }

func (s *httpServer) serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *httpServer) shutdown(ctx context.Context) {
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	s.ln.Close() // in case serve never ran
}

type tcpEcho struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newTCPEcho(addr string) (*tcpEcho, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &tcpEcho{ln: ln, conns: map[net.Conn]struct{}{}}, nil
}

func (s *tcpEcho) kind() string { return "tcp-echo" }
func (s *tcpEcho) addr() string { return s.ln.Addr().String() }

func (s *tcpEcho) serve() error {
	defer s.wg.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if !s.track(c) {
			c.Close()
			return nil
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			io.Copy(c, c)
		}()
	}
}

func (s *tcpEcho) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *tcpEcho) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *tcpEcho) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// shutdown stops accepting and closes open echo connections (they have no
// natural end, so there is nothing to drain).
func (s *tcpEcho) shutdown(context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
}

type udpEcho struct {
	pc     net.PacketConn
	mu     sync.Mutex
	closed bool
}

func newUDPEcho(addr string) (*udpEcho, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	return &udpEcho{pc: pc}, nil
}

func (s *udpEcho) kind() string { return "udp-echo" }
func (s *udpEcho) addr() string { return s.pc.LocalAddr().String() }

func (s *udpEcho) serve() error {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		// Best effort, like any UDP service: a failed reply is dropped.
		s.pc.WriteTo(buf[:n], from)
	}
}

func (s *udpEcho) shutdown(context.Context) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.pc.Close()
}
