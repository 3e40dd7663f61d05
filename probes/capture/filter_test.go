package capture_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/netsleuth/netsleuth/probes/capture"
	ct "github.com/netsleuth/netsleuth/probes/capture/capturetest"
)

// filterPackets is a spread of frames for filter tests: every protocol to
// and from hosts inside and outside the specs below, on wanted and other
// ports, ICMP errors quoting traffic of either, fragments, an IPv6
// fragment header, VLAN-tagged and non-IP frames.
func filterPackets() [][]byte {
	b := ct.NewBuilder()
	in4, out4 := netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("10.96.0.99")
	in6, out6 := netip.MustParseAddr("fd00:10:96::a"), netip.MustParseAddr("fd00:10:96::99")
	peer4, peer6 := netip.MustParseAddr("10.244.1.5"), netip.MustParseAddr("fd00:10:244::5")
	r4, r6 := netip.MustParseAddr("10.250.0.1"), netip.MustParseAddr("fd00:250::1")
	var frames [][]byte
	for _, fam := range [][3]netip.Addr{{in4, out4, peer4}, {in6, out6, peer6}} {
		for _, host := range fam[:2] {
			peer := fam[2]
			router := r4
			unreach := uint8(3)
			if host.Is6() {
				router, unreach = r6, layers.ICMPv6TypeDestinationUnreachable
			}
			for _, port := range []uint16{53, 80, 443, 8080} {
				h, p := netip.AddrPortFrom(host, port), netip.AddrPortFrom(peer, 40000+port)
				tcp := b.TCP(p, h, ct.SYN, 1, 0, nil)
				udp := b.UDP(h, p, []byte("datagram"))
				frames = append(frames, tcp, udp, b.TCP(h, p, ct.SYN|ct.ACK, 1, 2, nil),
					b.ICMPError(router, peer, unreach, 3, 0, udp), b.ICMPError(router, peer, unreach, 1, 0, tcp),
					ct.VLAN(tcp, 7))
			}
			frames = append(frames, b.Echo(peer, host, true, 9, 1), b.Echo(host, peer, false, 9, 1),
				b.IP(peer, host, layers.IPProtocolGRE, 0, []byte("gre")))
			if host.Is4() {
				frames = append(frames, b.ICMPError(router, peer, 11, 0, 0, b.UDP(netip.AddrPortFrom(peer, 5), netip.AddrPortFrom(host, 53), nil)),
					b.IP(peer, host, layers.IPProtocolTCP, 100, []byte("\x00\x50\x00\x50 non-first fragment, ports 80")))
			} else {
				frag := append([]byte{6, 0, 0, 1, 0, 0, 0, 1}, b.TCP(netip.AddrPortFrom(peer, 80), netip.AddrPortFrom(host, 80), ct.SYN, 1, 0, nil)[54:]...)
				frames = append(frames, b.IP(peer, host, layers.IPProtocolIPv6Fragment, 0, frag),
					b.ICMPError(router, peer, layers.ICMPv6TypePacketTooBig, 0, 1280, b.TCP(netip.AddrPortFrom(peer, 9), netip.AddrPortFrom(host, 443), ct.ACK, 1, 1, make([]byte, 1300))),
					b.ICMPError(router, peer, layers.ICMPv6TypeTimeExceeded, 0, 0, b.UDP(netip.AddrPortFrom(peer, 9), netip.AddrPortFrom(host, 53), nil)))
			}
		}
	}
	return append(frames, b.ARP(peer4, in4))
}

var filterSpecs = []capture.FilterSpec{
	{Hosts: []netip.Addr{netip.MustParseAddr("10.96.0.10")}},
	{Hosts: []netip.Addr{netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00:10:96::a")}, Ports: []uint16{53}},
	{Hosts: []netip.Addr{netip.MustParseAddr("fd00:10:96::a")}, Ports: []uint16{80, 443}, Protocols: []string{"tcp"}},
	{Hosts: []netip.Addr{netip.MustParseAddr("10.96.0.10")}, Protocols: []string{"udp"}},
	{Hosts: []netip.Addr{netip.MustParseAddr("fd00:10:96::a")}, Protocols: []string{"tcp"}},
	{Hosts: []netip.Addr{netip.MustParseAddr("10.96.0.10")}, Protocols: []string{"icmp"}},
	{Ports: []uint16{8080}},
	{},
	{Hosts: manyHosts()},
	{Hosts: []netip.Addr{netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00:10:96::a")},
		Peers: []netip.Addr{netip.MustParseAddr("10.244.1.5"), netip.MustParseAddr("fd00:10:244::5")}, Ports: []uint16{53, 80}},
	{Hosts: []netip.Addr{netip.MustParseAddr("10.96.0.10")}, Peers: []netip.Addr{netip.MustParseAddr("10.244.1.5")}},
	{Hosts: []netip.Addr{netip.MustParseAddr("fd00:10:96::a")}, Peers: []netip.Addr{netip.MustParseAddr("10.244.1.5")}, Protocols: []string{"udp"}},
	{Peers: []netip.Addr{netip.MustParseAddr("10.96.0.99")}, Protocols: []string{"tcp"}},
	{Hosts: []netip.Addr{netip.MustParseAddr("10.244.1.5")}, Peers: []netip.Addr{netip.MustParseAddr("10.96.0.10")}},
}

// manyHosts is enough IPv6 hosts that the program's jumps need long forms.
func manyHosts() []netip.Addr {
	hosts := []netip.Addr{netip.MustParseAddr("10.96.0.10")}
	for i := range 40 {
		hosts = append(hosts, netip.MustParseAddr(fmt.Sprintf("fd00:10:96::%x", 0x100+i)))
	}
	return append(hosts, netip.MustParseAddr("fd00:10:96::a"))
}

// vmVerdicts runs the compiled spec in x/net/bpf's VM over every frame.
func vmVerdicts(t *testing.T, spec capture.FilterSpec, frames [][]byte) []bool {
	t.Helper()
	ins, err := spec.Instructions()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Assemble(); err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("vm: %v", err)
	}
	out := make([]bool, len(frames))
	for i, f := range frames {
		n, err := vm.Run(f)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		out[i] = n > 0
	}
	return out
}

// tcpdumpVerdicts runs tcpdump with expr over the pcap of frames (written
// 100 µs apart) and reads back which frames matched from their timestamps.
func tcpdumpVerdicts(t *testing.T, tcpdump, path, expr string, n int) []bool {
	t.Helper()
	out, err := exec.Command(tcpdump, "-nn", "-tt", "-r", path, expr).Output()
	if err != nil {
		t.Fatalf("tcpdump %q: %v", expr, err)
	}
	got := make([]bool, n)
	sc := bufio.NewScanner(bytes.NewReader(out))
	start := ct.Epoch.UnixMicro()
	for sc.Scan() {
		var sec, usec int64
		if _, err := fmt.Sscanf(sc.Text(), "%d.%d", &sec, &usec); err != nil {
			continue
		}
		i := int((sec*1e6 + usec - start) / 100)
		if i >= 0 && i < n {
			got[i] = true
		}
	}
	return got
}

func TestFilterMatchesTcpdump(t *testing.T) {
	tcpdump := needPeer(t, "tcpdump")
	frames := filterPackets()
	path := filepath.Join(t.TempDir(), "filter.pcap")
	writePcap(t, path, func(p *ct.Pcap) error {
		for _, f := range frames {
			if err := p.Write(f); err != nil {
				return err
			}
		}
		return nil
	})
	for _, spec := range filterSpecs {
		expr := spec.String()
		t.Run(shorten(expr), func(t *testing.T) {
			ours := vmVerdicts(t, spec, frames)
			theirs := tcpdumpVerdicts(t, tcpdump, path, expr, len(frames))
			matched := 0
			for i := range frames {
				if ours[i] {
					matched++
				}
				if ours[i] != theirs[i] {
					t.Errorf("frame %d: filter %v, tcpdump %v", i, ours[i], theirs[i])
				}
			}
			t.Logf("%d of %d frames admitted by both", matched, len(frames))
			if len(spec.Hosts) > 0 && (matched == 0 || matched == len(frames)) {
				t.Errorf("%d of %d frames matched: the packets do not exercise the filter", matched, len(frames))
			}
		})
	}
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:60]
	}
	return s
}

func TestFilterExpressionAndVerdicts(t *testing.T) {
	spec := capture.FilterSpec{Hosts: []netip.Addr{netip.MustParseAddr("10.96.0.10")}, Ports: []uint16{53}}
	want := "(ip and (ip host 10.96.0.10) and (tcp port 53 or udp port 53 or icmp)) or " +
		"((icmp[0] = 3 or icmp[0] = 11 or icmp[0] = 12) and (icmp[20:4] = 0x0a60000a or icmp[24:4] = 0x0a60000a))"
	if got := spec.String(); got != want {
		t.Errorf("String()\n got %s\nwant %s", got, want)
	}
	b := ct.NewBuilder()
	dns := netip.MustParseAddrPort("10.96.0.10:53")
	client := netip.MustParseAddrPort("10.244.1.5:40000")
	q := b.UDP(client, dns, []byte("q"))
	cases := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"udp to port 53", q, true},
		{"tcp from port 53", b.TCP(dns, client, ct.ACK, 1, 1, nil), true},
		{"other port", b.UDP(client, netip.MustParseAddrPort("10.96.0.10:54"), nil), false},
		{"other host", b.UDP(client, netip.MustParseAddrPort("10.96.0.11:53"), nil), false},
		{"echo", b.Echo(client.Addr(), dns.Addr(), true, 1, 1), true},
		{"router's port unreachable about the host", b.ICMPError(netip.MustParseAddr("10.250.0.1"), client.Addr(), 3, 3, 0, q), true},
		{"arp", b.ARP(client.Addr(), dns.Addr()), false},
	}
	verdicts := vmVerdicts(t, spec, func() (fs [][]byte) {
		for _, c := range cases {
			fs = append(fs, c.frame)
		}
		return fs
	}())
	for i, c := range cases {
		if verdicts[i] != c.want {
			t.Errorf("%s: admitted %v, want %v", c.name, verdicts[i], c.want)
		}
	}
}

func TestFilterRejectsBadSpecs(t *testing.T) {
	for _, c := range []struct {
		spec capture.FilterSpec
		want string
	}{
		{capture.FilterSpec{Protocols: []string{"sctp"}}, `filter protocol "sctp" is not tcp, udp, icmp or icmp6`},
		{capture.FilterSpec{Protocols: []string{"icmp"}, Ports: []uint16{80}}, "filter ports need protocol tcp or udp"},
		{capture.FilterSpec{Hosts: []netip.Addr{{}}}, `filter host "invalid IP" is not a plain IP address`},
		{capture.FilterSpec{Hosts: make([]netip.Addr, 65)}, "a filter takes at most 64 hosts and 64 ports"},
	} {
		_, err := c.spec.Assemble()
		if err == nil || err.Error() != c.want {
			t.Errorf("%+v: error %v, want %q", c.spec, err, c.want)
		}
		if !strings.HasPrefix(c.spec.String(), "invalid filter: ") {
			t.Errorf("String() = %q", c.spec.String())
		}
	}
}

func TestFilterLongProgramUsesLongJumps(t *testing.T) {
	ins, err := capture.FilterSpec{Hosts: manyHosts(), Ports: []uint16{80, 443}}.Instructions()
	if err != nil {
		t.Fatal(err)
	}
	long := 0
	for _, i := range ins {
		if j, ok := i.(bpf.Jump); ok && j.Skip > 255 {
			long++
		}
	}
	if len(ins) < 300 || long == 0 {
		t.Errorf("%d instructions, %d long jumps: the test should need long jumps", len(ins), long)
	}
}

func TestParseFilter(t *testing.T) {
	ok := []struct{ expr, want string }{
		{"tcp", "(ip and (tcp or icmp)) or (ip6 and (tcp or icmp6))"},
		{"port 53 or port 80", "(ip and (tcp port 53 or tcp port 80 or udp port 53 or udp port 80 or icmp)) or (ip6 and (tcp port 53 or tcp port 80 or udp port 53 or udp port 80 or icmp6))"},
		{"udp and (port 53) and host 10.96.0.10", "(ip and (ip host 10.96.0.10) and (udp port 53 or icmp)) or " +
			"((icmp[0] = 3 or icmp[0] = 11 or icmp[0] = 12) and (icmp[20:4] = 0x0a60000a or icmp[24:4] = 0x0a60000a))"},
		{"(host 10.0.0.1 or host 10.0.0.2)and tcp", ""},
	}
	for _, c := range ok {
		s, err := capture.ParseFilter(c.expr)
		if err != nil {
			t.Errorf("%q: %v", c.expr, err)
			continue
		}
		if c.want != "" && s.String() != c.want {
			t.Errorf("%q\n got %s\nwant %s", c.expr, s.String(), c.want)
		}
	}
	bad := []struct{ expr, want string }{
		{"", "the filter is empty"},
		{"port banana", `"banana" is not a port number (1-65535)`},
		{"host 10.0.0.300", `"10.0.0.300" is not an IP address`},
		{"tcp port 80", `expected "and" before "port"`},
		{"tcp and port 80 or port 443", `put alternatives after "and" in parentheses`},
		{"tcp or port 80", `"tcp" and "port 80" are joined by "or"`},
		{"port 80 and port 443", `port is given twice`},
		{"(tcp or udp", "a parenthesis is not closed"},
		{"icmp and port 80", "filter ports need protocol tcp or udp"},
		{"not tcp", `"not" is not a filter term`},
		{"tcp and", "the filter ends where a term was expected"},
	}
	for _, c := range bad {
		_, err := capture.ParseFilter(c.expr)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line starting %q", c.expr, err, c.want)
		}
	}
}
