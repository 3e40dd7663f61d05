package nodeports

import (
	"fmt"
	"strings"

	"github.com/netsleuth/netsleuth/assets"
)

// CheckProfile checks --port-profile names a profile of assets/node-ports.yaml.
func CheckProfile(v string) error {
	data := assets.MustNodePorts()
	if _, ok := data.Profiles[v]; !ok {
		return fmt.Errorf("is not a port profile (there are %s)", strings.Join(data.ProfileNames(), ", "))
	}
	return nil
}
