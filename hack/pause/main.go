// Command pause is a static Go replacement for the Kubernetes pause (sandbox)
// container. Like the upstream C program it sleeps forever, exits 0 on SIGINT
// or SIGTERM, and reaps zombie children on SIGCHLD (it may run as PID 1 of a
// shared PID namespace). Build it with CGO_ENABLED=0.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const version = "netsleuth-pause-1.0"

func main() {
	for _, arg := range os.Args[1:] {
		if strings.EqualFold(arg, "-v") {
			fmt.Printf("%s version: %s\n", os.Args[0], version)
			return
		}
	}
	if os.Getpid() != 1 {
		// Not an error: pause is also used outside infra containers.
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
		os.Exit(0)
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
