package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/netsleuth/netsleuth/probes/source"
)

// CheckFrom checks the shape of --from before the cluster is asked: ns/pod,
// ns/deployment/name (one of its pods), an IP or CIDR, or ns/* for a
// matrix. Whether the pod exists is checked before anything is created.
func CheckFrom(v string) error {
	if !endpointShape(v) && source.Check(v) != nil {
		return errors.New("is not namespace/pod, namespace/deployment/name, an IP address or CIDR, or namespace/* for a matrix")
	}
	return nil
}

// CheckTo checks the shape of --to: an endpoint as --from with :port[/proto].
func CheckTo(v string) error {
	target, port, ok := strings.Cut(v, ":")
	if !ok {
		return errors.New("has no port (the policy question is about one port: namespace/pod:port[/proto])")
	}
	if _, _, svc := ServiceRef(target); !endpointShape(target) && !svc {
		return errors.New("is not namespace/pod:port[/proto], namespace/svc/name:port, IP:port, CIDR:port or namespace/*:port")
	}
	if _, err := ParsePort(port); err != nil {
		return fmt.Errorf("has a bad %v", err)
	}
	return nil
}

// CheckLiveMode checks --policy-live.
func CheckLiveMode(v string) error {
	if _, err := ParseLiveMode(v); err != nil {
		return errors.New("is not standin, ephemeral or off")
	}
	return nil
}

// endpointShape reports whether s reads as ns/pod, ns/*, an IP or a CIDR.
func endpointShape(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	ns, name, ok := strings.Cut(s, "/")
	return ok && ns != "" && name != "" && !strings.ContainsAny(name, "/ ") && !strings.ContainsAny(ns, " ")
}
