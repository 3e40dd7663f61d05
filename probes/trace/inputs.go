package trace

import (
	"errors"
	"fmt"
	"strings"
)

// CheckFrom checks the shape of --from (FROM) before the cluster is asked.
func CheckFrom(v string) error {
	var s Spec
	if s.parseFrom(v) != nil {
		return errors.New("is not namespace/pod, namespace/deployment/name or node/NAME")
	}
	return nil
}

// CheckTo checks the shape of --to (TO), its port included.
func CheckTo(v string) error {
	_, err := Parse("node/any", v, "")
	if err == nil {
		return nil
	}
	// Parse's errors read `TO "v": port "99999" is not 1-65535` or
	// `TO "v" is not ...; e.g. ...`: keep what is wrong, without the example.
	msg, _, _ := strings.Cut(err.Error(), "; e.g.")
	msg = strings.TrimPrefix(strings.TrimPrefix(msg, fmt.Sprintf("TO %q", v)), ":")
	return errors.New(strings.TrimSpace(msg))
}
