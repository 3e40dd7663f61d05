package ops

import (
	"context"
	"net"
	"testing"

	"github.com/netsleuth/netsleuth/probes/dnsquery"
)

func TestDNSOpRunsTheMeasurement(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close() // nothing listens: every query is refused
	resp := Run(context.Background(), Request{Ops: []Op{
		{Kind: DNS, DNS: &dnsquery.Spec{Servers: []dnsquery.Server{{Hop: "kube-dns", Addr: addr}}, Names: []string{"x.test"}, Protocols: []string{"udp"}, Count: 2, TimeoutMs: 300}},
	}}, Env{})
	r := resp.Results[0]
	if r.Outcome != OK || r.DNS == nil || len(r.DNS.Series) != 1 || r.DNS.Series[0].Sent != 2 || r.DNS.Series[0].Answered != 0 {
		t.Errorf("%+v", r)
	}
	if resp := Run(context.Background(), Request{Ops: []Op{{Kind: DNS}}}, Env{}); resp.Error == "" || len(resp.Results) != 0 {
		t.Errorf("a dns op without a spec must be refused: %+v", resp)
	}
}
