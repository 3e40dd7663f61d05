// Command netsleuth diagnoses Kubernetes cluster networking faults and explains
// the root cause and the fix. Installed as kubectl-netsleuth it is a kubectl
// plugin.
package main

import (
	"os"

	"github.com/netsleuth/netsleuth/cmd"
	"github.com/netsleuth/netsleuth/probes/all"
)

func main() {
	os.Exit(cmd.Main(all.Probes))
}
