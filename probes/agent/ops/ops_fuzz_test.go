package ops

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseProcRoute feeds arbitrary text to the /proc/net/route parser.
// Every route it returns has a masked IPv4 prefix, an IPv4 gateway or none
// and an interface; written back as /proc/net/route the routes parse to the
// same list; and Lookup of a route's own network address picks a route at
// least as specific that contains it.
func FuzzParseProcRoute(f *testing.F) {
	f.Add(procRoute)
	f.Add("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n")
	f.Add("eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n")
	f.Add("eth0\t0000A8C0\t00000000\t0001\t0\t0\t-1\tF0F0F0F0\t0\t0\t0\n")
	f.Add("eth0\tzz\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
	f.Add("lo\t0000007F\t00000000\t0000\t0\t0\t0\t000000FF\n")
	f.Fuzz(func(t *testing.T, text string) {
		rs, err := ParseProcRoute(text)
		if err != nil {
			if rs != nil {
				t.Fatalf("routes %v with error %v", rs, err)
			}
			return
		}
		for _, r := range rs {
			p, err := netip.ParsePrefix(r.Dst)
			if err != nil || !p.Addr().Is4() || p != p.Masked() {
				t.Fatalf("route %+v: destination is not a masked IPv4 prefix (%v)", r, err)
			}
			if r.Gateway != "" {
				if g, err := netip.ParseAddr(r.Gateway); err != nil || !g.Is4() {
					t.Fatalf("route %+v: gateway is not an IPv4 address", r)
				}
			}
			if r.Iface == "" || strings.ContainsAny(r.Iface, " \t\n") {
				t.Fatalf("route %+v: bad interface", r)
			}
			if r.String() == "" {
				t.Fatalf("route %+v renders empty", r)
			}
			best, ok := Lookup(rs, p.Addr())
			if !ok {
				t.Fatalf("Lookup(%s) found nothing, route %+v contains it", p.Addr(), r)
			}
			bp := netip.MustParsePrefix(best.Dst)
			if !bp.Contains(p.Addr()) || bp.Bits() < p.Bits() {
				t.Fatalf("Lookup(%s) = %+v, less specific than %+v", p.Addr(), best, r)
			}
		}
		again, err := ParseProcRoute(procRouteText(rs))
		if err != nil {
			t.Fatalf("re-parsing the routes: %v", err)
		}
		if !reflect.DeepEqual(again, rs) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", again, rs)
		}
	})
}

// procRouteText writes routes back in the kernel's /proc/net/route format.
func procRouteText(rs []Route) string {
	hexLE := func(a netip.Addr) string {
		b := a.As4()
		var le [4]byte
		binary.LittleEndian.PutUint32(le[:], binary.BigEndian.Uint32(b[:]))
		return fmt.Sprintf("%X", le[:])
	}
	var b strings.Builder
	b.WriteString("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n")
	for _, r := range rs {
		p := netip.MustParsePrefix(r.Dst)
		flags, gw := rtfUp, netip.IPv4Unspecified()
		if r.Gateway != "" {
			flags |= rtfGateway
			gw = netip.MustParseAddr(r.Gateway)
		}
		if r.Reject {
			flags |= rtfReject
		}
		mask := netip.AddrFrom4([4]byte{})
		if p.Bits() > 0 {
			var m [4]byte
			binary.BigEndian.PutUint32(m[:], ^uint32(0)<<(32-p.Bits()))
			mask = netip.AddrFrom4(m)
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%04X\t0\t0\t%d\t%s\t0\t0\t0\n", r.Iface, hexLE(p.Addr()), hexLE(gw), flags, r.Metric, hexLE(mask))
	}
	return b.String()
}

// FuzzResponseJSON decodes arbitrary bytes as an agent's request and as its
// response, the JSON that crosses the exec stream in each direction. What
// decodes must encode and decode again to the same value, every op's
// attempt bounds are sane, and the result helpers never panic.
func FuzzResponseJSON(f *testing.F) {
	f.Add([]byte(`{"ops":[{"kind":"tcp","target":"10.244.1.5","port":8765,"timeoutMs":1500},{"kind":"icmp","target":"10.244.1.5","count":3}]}`))
	f.Add([]byte(`{"ops":[{"kind":"read-files","paths":["/proc/sys/net/ipv4/ip_forward"]},{"kind":"routes"},{"kind":"iptables-save","timeoutMs":5000}]}`))
	f.Add([]byte(`{"ops":[{"kind":"dns","dns":{"servers":[{"hop":"kube-dns","addr":"10.96.0.10"}],"names":["kubernetes.default.svc.cluster.local"],"count":5}}]}`))
	f.Add([]byte(`{"hostname":"nsl-node1","addrs":["10.250.0.2"],"results":[{"op":{"kind":"icmp","target":"10.244.1.5","count":3},"outcome":"partial loss","sent":3,"received":2,"rttsMs":[0.21,0.35]}]}`))
	f.Add([]byte(`{"hostname":"n","results":[{"op":{"kind":"routes"},"outcome":"ok","routes":[{"dst":"0.0.0.0/0","gateway":"192.0.2.1","iface":"eth0","metric":0}]},{"op":{"kind":"read-files"},"outcome":"ok","files":{"/proc/sys/net/ipv4/ip_forward":"1"}}]}`))
	f.Add([]byte(`{"results":[{"op":{"kind":"http","target":"10.0.0.1","port":10250,"tls":true},"outcome":"ok","status":401,"body":"Unauthorized"}]}`))
	f.Add([]byte(`{"ops":null}`))
	for _, c := range refusals {
		if len(c.body) < 4<<10 { // large seeds make minimising slow; the unit tests cover them
			f.Add([]byte(c.body))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req Request
		if json.Unmarshal(data, &req) == nil {
			roundTrip(t, req)
			for _, o := range req.Ops {
				if o.timeout() <= 0 || o.count() < 1 || o.count() > 20 {
					t.Fatalf("op %+v: timeout %v, count %d", o, o.timeout(), o.count())
				}
				_ = o.Scheme()
			}
		}
		var resp Response
		if json.Unmarshal(data, &resp) == nil {
			roundTrip(t, resp)
			for _, r := range resp.Results {
				_, _, _ = r.Reached(), r.Loss(), r.AvgRTTMs()
				for _, rt := range r.Routes {
					_ = rt.String()
				}
				_, _ = Lookup(r.Routes, netip.MustParseAddr("10.244.1.5"))
			}
		}
	})
}

// FuzzDecodeRequest is what the agent does with its stdin: a request it
// takes is valid and within every bound (nothing is run here: the ops would
// send traffic); one it refuses says why in one line.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"ops":[{"kind":"tcp","target":"10.244.1.5","port":8765,"timeoutMs":1500},{"kind":"icmp","target":"10.244.1.5","count":3}]}`))
	f.Add([]byte(`{"ops":[{"kind":"read-files","paths":["/proc/sys/net/ipv4/ip_forward","/sys/class/net/eth0/iflink"]},{"kind":"routes"},{"kind":"iptables-save","table":"nat"}]}`))
	f.Add([]byte(`{"ops":[{"kind":"http","target":"metadata.google.internal","port":80,"path":"/computeMetadata/v1/"}]}`))
	for _, c := range refusals {
		if len(c.body) < 4<<10 { // large seeds make minimising slow; the unit tests cover them
			f.Add([]byte(c.body))
		}
	}
	f.Fuzz(checkDecodeRequest)
}

func checkDecodeRequest(t *testing.T, data []byte) {
	req, err := DecodeRequest(bytes.NewReader(data))
	if err != nil {
		if _, ok := err.(*Refusal); !ok || err.Error() == "" || strings.ContainsAny(err.Error(), "\n\r") {
			t.Fatalf("refusal %q (%T) is not one line", err, err)
		}
		return
	}
	if err := req.Validate(); err != nil || len(req.Ops) > MaxOps {
		t.Fatalf("accepted a request Validate refuses: %v", err)
	}
	for _, o := range req.Ops {
		if o.Count < 0 || o.Count > MaxCount || o.TimeoutMs < 0 || o.TimeoutMs > MaxTimeoutMs || o.Port < 0 || o.Port > 65535 {
			t.Fatalf("accepted op %+v out of bounds", o)
		}
		for _, p := range o.Paths {
			if _, ok := readRootOf(p); !ok || strings.Contains(p, "..") && strings.Contains("/"+p+"/", "/../") {
				t.Fatalf("accepted path %q outside the readable set", p)
			}
		}
		if o.Kind == DNS && (o.DNS == nil || o.DNS.Search != nil && o.DNS.Search.Path != "" && o.DNS.Search.Path != "/etc/resolv.conf") {
			t.Fatalf("accepted dns op %+v", o)
		}
	}
}

// roundTrip checks that v's encoding decodes to a value with the same
// encoding: nothing is lost or changed between the probe and the agent.
// (Bytes are compared, not values: an empty list omitted on the wire comes
// back as nil, which is the same message.)
func roundTrip[T any](t *testing.T, v T) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding %+v: %v", v, err)
	}
	var back T
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	b2, err := json.Marshal(back)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("round trip changed the message (%v):\n got %s\nwant %s", err, b2, b)
	}
}
