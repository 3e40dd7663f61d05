package assets

import (
	"fmt"
	"strings"
)

// KubeletFix is one remediation of a kubelet check; its strings are Go
// text/template strings rendered per node.
type KubeletFix struct {
	Description string   `json:"description"`
	Commands    []string `json:"commands,omitempty"`
}

// KubeletCheck is one entry of kubelet-checks.yaml: a field of the kubelet's
// configz, what it must be, and what to say and do when it is not.
type KubeletCheck struct {
	ID    string `json:"id"`
	Field string `json:"field"`
	// Rule is "equals" (Expected must equal the field) or the name of a rule
	// the kubelet probe evaluates in code.
	Rule     string `json:"rule,omitempty"`
	Expected any    `json:"expected,omitempty"`
	// Default is the kubelet's value when configz omits the field.
	Default    any          `json:"default,omitempty"`
	Severity   string       `json:"severity"`
	PassTitle  string       `json:"passTitle"`
	Title      string       `json:"title"`
	RootCause  string       `json:"rootCause"`
	Fixes      []KubeletFix `json:"fixes"`
	References []string     `json:"references"`
}

// Path splits Field into its JSON keys.
func (c KubeletCheck) Path() []string { return strings.Split(c.Field, ".") }

// KubeletChecks is the content of kubelet-checks.yaml.
type KubeletChecks struct {
	Checks []KubeletCheck `json:"checks"`
}

// LoadKubeletChecks parses kubelet-checks.yaml and checks each entry is complete.
func LoadKubeletChecks() (KubeletChecks, error) {
	var k KubeletChecks
	if err := load("kubelet-checks.yaml", &k); err != nil {
		return k, err
	}
	seen := map[string]bool{}
	for i, c := range k.Checks {
		if c.Rule == "" {
			k.Checks[i].Rule = "equals"
		}
		switch {
		case c.ID == "" || c.Field == "" || seen[c.ID]:
			return k, fmt.Errorf("kubelet-checks.yaml entry %d: missing or duplicate id/field", i)
		case c.Severity != "fail" && c.Severity != "warn":
			return k, fmt.Errorf("kubelet check %s: severity %q is not fail or warn", c.ID, c.Severity)
		case c.PassTitle == "" || c.Title == "" || c.RootCause == "" || len(c.Fixes) == 0 || len(c.References) == 0:
			return k, fmt.Errorf("kubelet check %s lacks a title, root cause, fix or reference", c.ID)
		case k.Checks[i].Rule == "equals" && c.Expected == nil:
			return k, fmt.Errorf("kubelet check %s: rule equals needs expected", c.ID)
		}
		seen[c.ID] = true
	}
	return k, nil
}

// MustKubeletChecks is LoadKubeletChecks, panicking on a broken embedded file.
func MustKubeletChecks() KubeletChecks {
	k, err := LoadKubeletChecks()
	if err != nil {
		panic(err)
	}
	return k
}
