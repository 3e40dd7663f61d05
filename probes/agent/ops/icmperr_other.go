//go:build !linux

package ops

import "syscall"

// icmpTrap reads ICMP errors on Linux only; elsewhere the errno says what
// it can.
type icmpTrap struct{}

func newICMPTrap() *icmpTrap                                   { return &icmpTrap{} }
func (*icmpTrap) control(_, _ string, _ syscall.RawConn) error { return nil }
func (*icmpTrap) read() *ICMPError                             { return nil }
func (*icmpTrap) close()                                       {}
