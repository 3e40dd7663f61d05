package ops

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestHTTPSAnyCertificateStatusCounts(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) }))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	o := Op{Kind: HTTP, Target: host, Port: p, Path: "/pods", TLS: true}
	r := Run(context.Background(), Request{Ops: []Op{o}}, Env{}).Results[0]
	if r.Outcome != OK || r.Status != http.StatusUnauthorized || o.Scheme() != "https" {
		t.Errorf("https: %+v", r)
	}
}
