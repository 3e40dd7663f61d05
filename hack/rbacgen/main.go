// Command rbacgen writes assets/rbac/netsleuth-view.yaml and
// netsleuth-active.yaml from the probes' declared RBAC. Run it with
// `go generate ./cmd`; a test in cmd fails when the files are stale.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/netsleuth/netsleuth/cmd"
	"github.com/netsleuth/netsleuth/probes/all"
)

func main() {
	dir := filepath.Join("..", "assets", "rbac")
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	view, active, err := cmd.RBACManifests(all.Probes())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "netsleuth-view.yaml"), view, 0o644)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "netsleuth-active.yaml"), active, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rbacgen:", err)
		os.Exit(1)
	}
}
