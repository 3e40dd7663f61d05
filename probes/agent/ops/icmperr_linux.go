//go:build linux

package ops

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// icmpTrap makes the sockets of one dial queue the ICMP errors they get
// (IP_RECVERR) and keeps a duplicate of the last one, so the error queue
// can be read after the dial failed and the socket was closed: the ICMP
// type and code, and who sent them, which the errno alone does not say.
type icmpTrap struct{ fd int }

func newICMPTrap() *icmpTrap { return &icmpTrap{fd: -1} }

// control is a net.Dialer Control function.
func (t *icmpTrap) control(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1) != nil {
			return // not IPv4, or not allowed: the errno alone will do
		}
		t.close()
		t.fd, serr = unix.Dup(int(fd))
		if serr != nil {
			t.fd, serr = -1, nil
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// read returns the first ICMP error queued on the socket, nil for none.
func (t *icmpTrap) read() *ICMPError {
	if t.fd < 0 {
		return nil
	}
	buf, oob := make([]byte, 256), make([]byte, 512)
	_, oobn, _, _, err := unix.Recvmsg(t.fd, buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
	if err != nil {
		return nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		size := int(unsafe.Sizeof(unix.SockExtendedErr{}))
		if m.Header.Level != unix.SOL_IP || m.Header.Type != unix.IP_RECVERR || len(m.Data) < size {
			continue
		}
		return parseExtendedErr(m.Data, size)
	}
	return nil
}

// parseExtendedErr reads a struct sock_extended_err and the offender's
// sockaddr_in after it.
func parseExtendedErr(data []byte, size int) *ICMPError {
	ee := (*unix.SockExtendedErr)(unsafe.Pointer(&data[0]))
	if ee.Origin != unix.SO_EE_ORIGIN_ICMP {
		return nil
	}
	e := &ICMPError{Type: int(ee.Type), Code: int(ee.Code)}
	if off := data[size:]; len(off) >= 8 && binary.NativeEndian.Uint16(off) == unix.AF_INET {
		e.From = netip.AddrFrom4([4]byte(off[4:8])).String()
	}
	return e
}

func (t *icmpTrap) close() {
	if t.fd >= 0 {
		_ = unix.Close(t.fd)
		t.fd = -1
	}
}
