package ops

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Route is one IPv4 route from /proc/net/route.
type Route struct {
	Dst     string `json:"dst"`               // CIDR
	Gateway string `json:"gateway,omitempty"` // "" when on-link
	Iface   string `json:"iface"`             // "*" for reject routes
	Metric  int    `json:"metric"`
	// Reject marks unreachable, prohibit and blackhole routes.
	Reject bool `json:"reject,omitempty"`
}

// String renders the route the way `ip route` would.
func (r Route) String() string {
	var b strings.Builder
	if r.Reject {
		b.WriteString("unreachable ")
	}
	b.WriteString(r.Dst)
	if r.Gateway != "" {
		b.WriteString(" via " + r.Gateway)
	}
	if !r.Reject {
		b.WriteString(" dev " + r.Iface)
	}
	if r.Metric != 0 {
		b.WriteString(" metric " + strconv.Itoa(r.Metric))
	}
	return b.String()
}

// Linux route flags (include/uapi/linux/route.h).
const (
	rtfUp      = 0x0001
	rtfGateway = 0x0002
	rtfReject  = 0x0200
)

// ParseProcRoute parses the text of /proc/net/route.
func ParseProcRoute(text string) ([]Route, error) {
	var out []Route
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[0] == "Iface" {
			continue
		}
		dst, err1 := hexAddr(f[1])
		gw, err2 := hexAddr(f[2])
		mask, err3 := hexAddr(f[7])
		flags, err4 := strconv.ParseUint(f[3], 16, 32)
		metric, err5 := strconv.Atoi(f[6])
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			return nil, fmt.Errorf("parsing route line %q: %w", sc.Text(), err)
		}
		if flags&rtfUp == 0 {
			continue
		}
		bits := 0
		for _, b := range mask.As4() {
			bits += popcount(b)
		}
		r := Route{Dst: netip.PrefixFrom(dst, bits).Masked().String(), Iface: f[0], Metric: metric, Reject: flags&rtfReject != 0}
		if flags&rtfGateway != 0 {
			r.Gateway = gw.String()
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

func popcount(b byte) int {
	n := 0
	for ; b != 0; b &= b - 1 {
		n++
	}
	return n
}

// hexAddr decodes a little-endian hex IPv4 address from /proc/net/route.
func hexAddr(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("bad address %q", s)
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(b))
	return netip.AddrFrom4(a), nil
}

// Lookup returns the route the kernel would pick for dst from the main
// table: the longest prefix, then the lowest metric.
func Lookup(routes []Route, dst netip.Addr) (Route, bool) {
	var best Route
	bestBits, found := -1, false
	for _, r := range routes {
		p, err := netip.ParsePrefix(r.Dst)
		if err != nil || !p.Contains(dst) {
			continue
		}
		if b := p.Bits(); b > bestBits || (b == bestBits && r.Metric < best.Metric) {
			best, bestBits, found = r, b, true
		}
	}
	return best, found
}

// runRoutes reads the routing table of the agent's network namespace.
func runRoutes(o Op, procRoot string) Result {
	r := Result{Op: o}
	b, err := os.ReadFile(filepath.Join(procRoot, "net/route"))
	if err != nil {
		return fail(r, err)
	}
	if r.Routes, err = ParseProcRoute(string(b)); err != nil {
		return fail(r, err)
	}
	r.Outcome = OK
	return r
}

// runReadFiles reads small files such as /proc/sys/net/ipv4/ip_forward,
// from the readable set only (Readable).
func runReadFiles(o Op, env Env) Result {
	r := Result{Op: o, Files: map[string]string{}, Outcome: OK}
	var missing []string
	for _, p := range o.Paths {
		v, err := env.readFile(p)
		if err != nil {
			missing = append(missing, err.Error())
			continue
		}
		r.Files[p] = v
	}
	if len(missing) > 0 {
		r.Error = strings.Join(missing, "; ")
		if len(r.Files) == 0 {
			r.Outcome = Failed
		}
	}
	return r
}

// iptablesSaveCandidates are where distributions install iptables-save.
var iptablesSaveCandidates = []string{"/usr/sbin/iptables-save", "/sbin/iptables-save", "/usr/bin/iptables-save", "/bin/iptables-save"}

// runIPTablesSave runs the host's iptables-save chrooted into hostRoot (the
// host's root filesystem mounted read-only in a node agent).
func runIPTablesSave(ctx context.Context, o Op, hostRoot string) Result {
	r := Result{Op: o}
	if hostRoot == "" {
		return fail(r, errors.New("iptables-save needs the host root mounted in a node agent"))
	}
	bin := ""
	for _, c := range iptablesSaveCandidates {
		if _, err := os.Lstat(filepath.Join(hostRoot, c)); err == nil { // a symlink resolves inside the chroot
			bin = c
			break
		}
	}
	if bin == "" {
		return fail(r, fmt.Errorf("no iptables-save under %s (looked in %s)", hostRoot, strings.Join(iptablesSaveCandidates, ", ")))
	}
	ctx, cancel := context.WithTimeout(ctx, 4*o.timeout())
	defer cancel()
	args := []string{bin}
	if o.Table != "" {
		args = append(args, "-t", o.Table)
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Path, cmd.Args = bin, args
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	attr, err := chrootAttr(hostRoot)
	if err != nil {
		return fail(r, err)
	}
	cmd.SysProcAttr = attr
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fail(r, fmt.Errorf("%s: %w: %s", bin, err, strings.TrimSpace(stderr.String())))
	}
	r.Outcome, r.Output = OK, string(out)
	return r
}
