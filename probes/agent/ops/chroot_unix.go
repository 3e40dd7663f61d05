//go:build unix

package ops

import "syscall"

// chrootAttr runs a command chrooted into root.
func chrootAttr(root string) (*syscall.SysProcAttr, error) {
	return &syscall.SysProcAttr{Chroot: root}, nil
}
