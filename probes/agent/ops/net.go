package ops

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// Classify maps a network error to the outcome a user would recognise.
func Classify(err error) Outcome {
	var ne net.Error
	switch {
	case err == nil:
		return OK
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return Reset
	case errors.Is(err, syscall.EHOSTUNREACH):
		return HostUnreach
	case errors.Is(err, syscall.ENETUNREACH):
		return NetUnreach
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		// EPERM on connect or send is an iptables REJECT/DROP with
		// --reject-with icmp-admin-prohibited or a local OUTPUT drop.
		return AdminProhibit
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return Timeout
	}
	return Failed
}

func hostPort(o Op) string { return net.JoinHostPort(o.Target, strconv.Itoa(o.Port)) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fail(r Result, err error) Result {
	r.Outcome, r.Error = Classify(err), err.Error()
	return r
}

// explain adds the ICMP error the socket got to a result that did not
// succeed: its code says more than the errno (an administrative prohibition
// reads as "no route to host" to TCP), and its sender whether the target
// or something on the way answered.
func (t *icmpTrap) explain(r Result) Result {
	if r.Outcome == OK {
		return r
	}
	if e := t.read(); e != nil {
		r.ICMP = e
		if o := e.outcome(); o != "" {
			r.Outcome = o
		}
	}
	return r
}

// runTCP connects to Target:Port once.
func runTCP(ctx context.Context, o Op) Result {
	r := Result{Op: o, Sent: 1}
	t := newICMPTrap()
	defer t.close()
	d := net.Dialer{Timeout: o.timeout(), Control: t.control}
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", hostPort(o))
	if err != nil {
		return t.explain(fail(r, err))
	}
	defer c.Close()
	r.Received, r.Outcome, r.Local = 1, OK, c.LocalAddr().String()
	r.RTTsMs = []float64{ms(time.Since(start))}
	return r
}

// runUDP sends Count datagrams and waits for each to be echoed.
func runUDP(ctx context.Context, o Op) Result {
	r := Result{Op: o}
	t := newICMPTrap()
	defer t.close()
	d := net.Dialer{Control: t.control}
	c, err := d.DialContext(ctx, "udp", hostPort(o))
	if err != nil {
		return t.explain(fail(r, err))
	}
	defer c.Close()
	r.Local = c.LocalAddr().String()
	var lastErr error
	buf := make([]byte, 512)
	for i := range o.count() {
		msg := fmt.Sprintf("netsleuth-udp-%d", i)
		start := time.Now()
		r.Sent++
		if _, err := c.Write([]byte(msg)); err != nil {
			lastErr = err
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(o.timeout()))
		n, err := c.Read(buf)
		if err != nil {
			lastErr = err
			continue
		}
		if string(buf[:n]) == msg {
			r.Received++
			r.RTTsMs = append(r.RTTsMs, ms(time.Since(start)))
		}
	}
	return t.explain(echoOutcome(r, lastErr))
}

func echoOutcome(r Result, lastErr error) Result {
	switch {
	case r.Received == r.Sent && r.Sent > 0:
		r.Outcome = OK
	case r.Received > 0:
		r.Outcome = PartialLoss
		if lastErr != nil {
			r.Error = lastErr.Error()
		}
	case lastErr != nil:
		r = fail(r, lastErr)
	default:
		r.Outcome, r.Error = Timeout, "no reply"
	}
	return r
}

// runICMP sends Count echo requests. It uses an unprivileged ICMP socket
// ("udp4", allowed by net.ipv4.ping_group_range) and falls back to a raw
// socket when that is not permitted (root with CAP_NET_RAW).
func runICMP(ctx context.Context, o Op) Result {
	r := Result{Op: o}
	dst, err := net.ResolveIPAddr("ip4", o.Target)
	if err != nil {
		return fail(r, err)
	}
	c, err := icmp.ListenPacket("udp4", "0.0.0.0")
	var to net.Addr = &net.UDPAddr{IP: dst.IP}
	if err != nil {
		c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		to = dst
	}
	if err != nil {
		r = fail(r, err)
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			r.Outcome = PermissionDeny
		}
		return r
	}
	defer c.Close()
	var lastErr error
	for i := range o.count() {
		if ctx.Err() != nil {
			lastErr = ctx.Err()
			break
		}
		rtt, err := pingOnce(c, to, i+1, o.timeout())
		r.Sent++
		if err != nil {
			lastErr = err
			continue
		}
		r.Received++
		r.RTTsMs = append(r.RTTsMs, ms(rtt))
	}
	r = echoOutcome(r, lastErr)
	if f := (icmpFailure{}); r.Outcome != OK && errors.As(lastErr, &f) {
		r.ICMP = &f.ICMPError
	}
	return r
}

// pingOnce sends one echo request with sequence seq and waits for its reply.
func pingOnce(c *icmp.PacketConn, to net.Addr, seq int, timeout time.Duration) (time.Duration, error) {
	id := os.Getpid() & 0xffff
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("netsleuth")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := c.WriteTo(b, to); err != nil {
		return 0, err
	}
	deadline := start.Add(timeout)
	buf := make([]byte, 1500)
	for {
		_ = c.SetReadDeadline(deadline)
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return 0, err
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil {
			continue
		}
		switch m.Type {
		case ipv4.ICMPTypeEchoReply:
			if e, ok := m.Body.(*icmp.Echo); ok && e.Seq == seq {
				return time.Since(start), nil
			}
		case ipv4.ICMPTypeDestinationUnreachable:
			e := icmpFailure{ICMPError{Type: 3, Code: m.Code}}
			if from != nil {
				e.From, _, _ = strings.Cut(from.String(), ":")
			}
			return 0, e
		}
	}
}

// icmpFailure is the destination unreachable an echo request got; it
// unwraps to the errno Linux maps its code to.
type icmpFailure struct{ ICMPError }

func (e icmpFailure) Error() string { return e.String() }
func (e icmpFailure) Unwrap() error { return unreachErr(e.Code) }

// unreachErr maps an ICMP destination-unreachable code to the errno Linux uses.
func unreachErr(code int) error {
	switch code {
	case 0, 6, 11:
		return syscall.ENETUNREACH
	case 3:
		return syscall.ECONNREFUSED
	case 9, 10, 13:
		return syscall.EACCES
	}
	return syscall.EHOSTUNREACH
}

// Scheme is "https" for a TLS HTTP op, else "http".
func (o Op) Scheme() string {
	if o.TLS {
		return "https"
	}
	return "http"
}

// runHTTP fetches http://Target:Port/Path and keeps the first bytes.
func runHTTP(ctx context.Context, o Op) Result {
	r := Result{Op: o, Sent: 1}
	ctx, cancel := context.WithTimeout(ctx, o.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.Scheme()+"://"+hostPort(o)+o.Path, nil)
	if err != nil {
		return fail(r, err)
	}
	t := newICMPTrap()
	defer t.close()
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true, DialContext: (&net.Dialer{Control: t.control}).DialContext}
	if o.TLS {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // only the status is read
	}
	defer tr.CloseIdleConnections()
	start := time.Now()
	resp, err := (&http.Client{Transport: tr, CheckRedirect: noRedirect}).Do(req)
	if err != nil {
		return t.explain(fail(r, err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	r.Received, r.Outcome, r.Status, r.Body = 1, OK, resp.StatusCode, string(body)
	r.RTTsMs = []float64{ms(time.Since(start))}
	return r
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
