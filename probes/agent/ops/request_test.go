package ops

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netsleuth/netsleuth/probes/dnsquery"
)

// refusals are requests the agent must refuse, each with the words its
// one-sentence error must contain.
var refusals = []struct {
	name, body, want string
}{
	{"oversize body", `{"ops":[]}` + strings.Repeat(" ", MaxRequestBytes), "larger than 1048576 bytes"},
	{"not JSON", `not json`, "not a JSON request object"},
	{"JSON of another shape", `["tcp"]`, "not a JSON request object"},
	{"unknown field", `{"ops":[],"cmd":"sh"}`, `field "cmd", which this agent does not know`},
	{"unknown op field", `{"ops":[{"kind":"tcp","target":"10.0.0.1","port":80,"argv":["sh"]}]}`, `field "argv", which this agent does not know`},
	{"two requests", `{"ops":[]} {"ops":[]}`, "data after its JSON object"},
	{"too many ops", manyOps(MaxOps + 1), "257 ops, more than the 256 allowed"},
	{"unknown op", `{"ops":[{"kind":"exec","target":"sh"}]}`, `op 0 ("exec"): unknown op kind`},
	{"empty op kind", `{"ops":[{}]}`, `op 0 (""): unknown op kind`},
	{"file outside the set", readReq("/etc/passwd"), `path "/etc/passwd" is outside the readable set`},
	{"host root mount", readReq("/host/etc/kubernetes/admin.conf"), "outside the readable set"},
	{"another process's environment", readReq("/proc/1/environ"), "outside the readable set"},
	{"the host root through /proc", readReq("/proc/self/root/host/etc/shadow"), "outside the readable set"},
	{"sysfs outside the net classes", readReq("/sys/kernel/security/lsm"), "outside the readable set"},
	{"dot-dot", readReq("/proc/sys/net/../../self/environ"), "not a clean absolute path"},
	{"dot-dot at the end", readReq("/sys/class/net/.."), "not a clean absolute path"},
	{"relative path", readReq("proc/sys/net/ipv4/ip_forward"), "not a clean absolute path"},
	{"double slash", readReq("/proc/sys/net//ipv4/ip_forward"), "not a clean absolute path"},
	{"the set's directory itself", readReq("/proc/sys/net/"), "not a clean absolute path"},
	{"NUL byte", readReq("/proc/sys/net/ipv4/ip_forward\u0000/etc/shadow"), "not a clean absolute path"},
	{"no paths", `{"ops":[{"kind":"read-files"}]}`, "1 to 32 paths, got 0"},
	{"too many paths", readReq(strings.Split(strings.Repeat("/proc/sys/net/ipv4/ip_forward,", MaxPaths+1), ",")[:MaxPaths+1]...), "1 to 32 paths, got 33"},
	{"negative count", `{"ops":[{"kind":"icmp","target":"10.0.0.1","count":-1}]}`, "count -1 is out of range; pass 0 to 20"},
	{"count too large", `{"ops":[{"kind":"udp","target":"10.0.0.1","port":53,"count":1000000}]}`, "count 1000000 is out of range"},
	{"negative timeout", `{"ops":[{"kind":"tcp","target":"10.0.0.1","port":80,"timeoutMs":-5}]}`, "timeoutMs -5 is out of range"},
	{"timeout too long", `{"ops":[{"kind":"iptables-save","timeoutMs":3600000}]}`, "timeoutMs 3600000 is out of range; pass 0 (the default) to 30000"},
	{"port too large", `{"ops":[{"kind":"tcp","target":"10.0.0.1","port":70000}]}`, "port 70000 is out of range"},
	{"negative port", `{"ops":[{"kind":"udp","target":"10.0.0.1","port":-1}]}`, "port -1 is out of range"},
	{"tcp without a port", `{"ops":[{"kind":"tcp","target":"10.0.0.1"}]}`, "needs a port from 1 to 65535"},
	{"no target", `{"ops":[{"kind":"icmp"}]}`, "needs a target"},
	{"target with a path", `{"ops":[{"kind":"http","target":"10.0.0.1/x?","port":80}]}`, "neither an IP address nor a host name"},
	{"target with a user", `{"ops":[{"kind":"http","target":"u@evil.example","port":80}]}`, "neither an IP address nor a host name"},
	{"HTTP path naming another host", `{"ops":[{"kind":"http","target":"10.0.0.1","port":80,"path":"@evil.example/"}]}`, "not an absolute path"},
	{"HTTP path with a newline", `{"ops":[{"kind":"http","target":"10.0.0.1","port":80,"path":"/\r\nHost: x"}]}`, "not an absolute path"},
	{"iptables table with a shell", `{"ops":[{"kind":"iptables-save","table":"nat; cat /etc/shadow"}]}`, "is not one of filter, nat, mangle, raw, security"},
	{"dns without a measurement", `{"ops":[{"kind":"dns"}]}`, "needs a dns measurement"},
	{"dns reading another file", dnsReq(dnsquery.Spec{Search: &dnsquery.SearchSpec{Name: "kubernetes.default", Path: "/host/etc/shadow"}}), "reads only /etc/resolv.conf"},
	{"dns server that is a name", dnsReq(dnsquery.Spec{Servers: []dnsquery.Server{{Addr: "evil.example"}}, Names: []string{"x."}}), `dns server "evil.example" is not an IP address`},
	{"dns server port out of range", dnsReq(dnsquery.Spec{Servers: []dnsquery.Server{{Addr: "10.96.0.10:0"}}, Names: []string{"x."}}), "is not an IP address with an optional port"},
	{"dns count out of range", dnsReq(dnsquery.Spec{Count: -3}), "dns count -3 is out of range"},
	{"dns timeout out of range", dnsReq(dnsquery.Spec{TimeoutMs: 600_000}), "dns timeoutMs 600000 is out of range"},
	{"dns parallel out of range", dnsReq(dnsquery.Spec{Parallel: 10_000}), "dns parallel 10000 is out of range"},
	{"dns protocol", dnsReq(dnsquery.Spec{Protocols: []string{"quic"}}), `protocol "quic" is not udp or tcp`},
}

func manyOps(n int) string {
	var r Request
	for range n {
		r.Ops = append(r.Ops, Op{Kind: TCP, Target: "10.0.0.1", Port: 80})
	}
	b, _ := json.Marshal(r)
	return string(b)
}

func readReq(paths ...string) string {
	b, _ := json.Marshal(Request{Ops: []Op{{Kind: ReadFiles, Paths: paths}}})
	return string(b)
}

func dnsReq(s dnsquery.Spec) string {
	b, _ := json.Marshal(Request{Ops: []Op{{Kind: DNS, DNS: &s}}})
	return string(b)
}

// oneSentence fails unless msg is one line that is not empty.
func oneSentence(t *testing.T, msg string) {
	t.Helper()
	if msg == "" || strings.ContainsAny(msg, "\n\r") || len(msg) > 400 {
		t.Errorf("not one sentence: %q", msg)
	}
}

func TestDecodeRequestRefuses(t *testing.T) {
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeRequest(strings.NewReader(c.body))
			if _, ok := err.(*Refusal); !ok {
				t.Fatalf("got %v (%T), want a refusal", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("refusal %q does not say %q", err, c.want)
			}
			oneSentence(t, err.Error())
		})
	}
}

// TestRunRunsNothingItRefuses: Run refuses the same requests on its own,
// as a whole: not one op of a request with one bad op runs.
func TestRunRunsNothingItRefuses(t *testing.T) {
	req := Request{Ops: []Op{
		{Kind: ReadFiles, Paths: []string{"/proc/sys/net/ipv4/ip_forward"}},
		{Kind: ReadFiles, Paths: []string{"/proc/self/environ"}},
	}}
	resp := Run(context.Background(), req, Env{})
	if len(resp.Results) != 0 || !strings.Contains(resp.Error, `op 1 ("read-files"): path "/proc/self/environ" is outside the readable set`) {
		t.Errorf("got %+v", resp)
	}
	oneSentence(t, resp.Error)
}

func TestDecodeRequestAcceptsWhatProbesSend(t *testing.T) {
	for _, body := range []string{
		`{"ops":[]}`,
		`{"ops":[{"kind":"tcp","target":"10.244.1.5","port":8765,"timeoutMs":2000},{"kind":"icmp","target":"10.244.1.5","count":3,"timeoutMs":1000},{"kind":"udp","target":"10.244.1.5","port":8765,"count":3}]}`,
		`{"ops":[{"kind":"http","target":"metadata.google.internal","port":80,"path":"/computeMetadata/v1/?recursive=true"},{"kind":"http","target":"10.250.0.1","port":10250,"path":"/pods","tls":true}]}`,
		`{"ops":[{"kind":"read-files","paths":["/proc/sys/net/ipv4/ip_forward","/proc/sys/net/bridge/bridge-nf-call-iptables","/proc/sys/net/netfilter/nf_conntrack_count","/proc/sys/net/ipv4/conf/all/rp_filter","/sys/class/net/eth0/iflink"]},{"kind":"routes"},{"kind":"iptables-save","timeoutMs":5000},{"kind":"iptables-save","table":"nat"}]}`,
		dnsReq(dnsquery.Spec{Servers: []dnsquery.Server{{Hop: "kube-dns", Addr: "10.96.0.10"}, {Hop: "upstream", Addr: "10.250.0.53:53"}}, Names: []string{"kubernetes.default.svc.cluster.local."},
			Count: 5, TimeoutMs: 2000, Search: &dnsquery.SearchSpec{Name: "kubernetes.default", Path: "/etc/resolv.conf"}}),
	} {
		if _, err := DecodeRequest(strings.NewReader(body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// sysTree is a fake root for read-files: the allowed files, an interface
// linked into /sys/devices as the kernel does, and links that lead out.
func sysTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"proc/sys/net/ipv4/ip_forward":        "1\n",
		"sys/devices/virtual/net/eth0/iflink": "7\n",
		"secret":                              "TOKEN\n",
		"sys/kernel/secret":                   "KERNEL\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"sys/class/net/eth0":   "../../devices/virtual/net/eth0",
		"proc/sys/net/escape":  "../../../secret",
		"sys/class/net/abs":    "/etc",
		"sys/class/net/up":     "../../../secret",
		"sys/class/net/kernel": "../../kernel",
	}
	for name, target := range links {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadFilesFollowsLinksOnlyInsideTheSet(t *testing.T) {
	env := Env{SysRoot: sysTree(t)}
	resp := Run(context.Background(), Request{Ops: []Op{{Kind: ReadFiles, Paths: []string{"/proc/sys/net/ipv4/ip_forward", "/sys/class/net/eth0/iflink"}}}}, env)
	if resp.Error != "" || resp.Results[0].Files["/proc/sys/net/ipv4/ip_forward"] != "1" || resp.Results[0].Files["/sys/class/net/eth0/iflink"] != "7" {
		t.Fatalf("allowed files: %+v", resp)
	}
	for path, want := range map[string]string{
		"/proc/sys/net/escape":         `path "/proc/sys/net/escape" leads out of /proc/sys/net through a symbolic link`,
		"/sys/class/net/up":            "leads out of /sys through a symbolic link",
		"/sys/class/net/abs/passwd":    "leads out of /sys through a symbolic link",
		"/sys/class/net/kernel/secret": "", // inside /sys: a link within sysfs is followed
	} {
		resp := Run(context.Background(), Request{Ops: []Op{{Kind: ReadFiles, Paths: []string{path}}}}, env)
		if want == "" {
			if resp.Error != "" {
				t.Errorf("%s: refused: %s", path, resp.Error)
			}
			continue
		}
		if len(resp.Results) != 0 || !strings.Contains(resp.Error, want) {
			t.Errorf("%s: got %+v, want a refusal saying %q", path, resp, want)
		}
		oneSentence(t, resp.Error)
	}
}

// TestReadFileNeverLeavesTheSet: even without the check (a link swapped in
// after it), the read itself cannot follow a link out of its root.
func TestReadFileNeverLeavesTheSet(t *testing.T) {
	env := Env{SysRoot: sysTree(t)}
	r := runReadFiles(Op{Kind: ReadFiles, Paths: []string{"/proc/sys/net/escape", "/sys/class/net/up", "/sys/class/net/abs/passwd"}}, env)
	if len(r.Files) != 0 || r.Outcome != Failed || strings.Contains(r.Error, "TOKEN") {
		t.Errorf("read through an escaping link: %+v", r)
	}
}

func TestReadFileBounds(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "proc/sys/net/big")
	if err := os.MkdirAll(filepath.Join(dir, "proc/sys/net/adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, make([]byte, maxFileBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runReadFiles(Op{Kind: ReadFiles, Paths: []string{"/proc/sys/net/big", "/proc/sys/net/adir"}}, Env{SysRoot: dir})
	if len(r.Files) != 0 || !strings.Contains(r.Error, "larger than 65536 bytes") || !strings.Contains(r.Error, "not a regular file") {
		t.Errorf("got %+v", r)
	}
}
