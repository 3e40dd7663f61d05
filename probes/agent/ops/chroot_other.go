//go:build !unix

package ops

import (
	"errors"
	"syscall"
)

// chrootAttr: the agent runs in Linux pods only; elsewhere (the netsleuth
// CLI on Windows) there is no chroot to run a host's command in.
func chrootAttr(string) (*syscall.SysProcAttr, error) {
	return nil, errors.New("running a host command chrooted into its root needs a Unix agent")
}
