//go:build tools

// Package calico pins the Calico commands the lab's calico profile builds:
// felix (the policy and routing agent) and Calico's CNI plugin.
package calico

import (
	_ "github.com/projectcalico/calico/cni-plugin/cmd/calico"
	_ "github.com/projectcalico/calico/felix/cmd/calico-felix"
)
