package podtoservice

import (
	"errors"
	"strings"
)

// CheckService checks --service is namespace/name; whether the Service exists
// is the probe's finding.
func CheckService(v string) error {
	ns, name, ok := strings.Cut(v, "/")
	if !ok || ns == "" || name == "" || strings.ContainsAny(name, "/ ") || strings.Contains(ns, " ") {
		return errors.New("is not namespace/name of a Service")
	}
	return nil
}
