// Package report writes a model.Report for headless runs: text, JSON, YAML or
// JUnit XML.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/netsleuth/netsleuth/model"
)

// Format is an output format name as given to -o.
type Format string

// The formats Write knows.
const (
	Text  Format = "text"
	JSON  Format = "json"
	YAML  Format = "yaml"
	JUnit Format = "junit"
)

// Formats lists the format names in the order help text shows them.
func Formats() []string { return []string{string(Text), string(JSON), string(YAML), string(JUnit)} }

// ParseFormat checks s against the known formats.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if s == f {
			return Format(s), nil
		}
	}
	return "", fmt.Errorf("unknown output format %q (want one of %s)", s, strings.Join(Formats(), ", "))
}

// Options tune the writers.
type Options struct {
	// Color styles the text format with ANSI colours.
	Color bool
}

// Write writes r to w in format f.
func Write(w io.Writer, f Format, r *model.Report, opts Options) error {
	switch f {
	case Text:
		return WriteText(w, r, opts.Color)
	case JSON:
		return WriteJSON(w, r)
	case YAML:
		return WriteYAML(w, r)
	case JUnit:
		return WriteJUnit(w, r)
	}
	return fmt.Errorf("unknown output format %q", f)
}

// WriteJSON writes r as JSON indented by two spaces.
func WriteJSON(w io.Writer, r *model.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// WriteYAML writes r as YAML with the JSON field names.
func WriteYAML(w io.Writer, r *model.Report) error {
	b, err := yaml.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode YAML report: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write YAML report: %w", err)
	}
	return nil
}
