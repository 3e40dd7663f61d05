package cmd

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
)

// validateInputValues checks every value given on the command line against
// the probes' declared inputs (model.Input.Check), so a new probe's flags are
// checked like the others, before anything connects or is created. A flag is
// checked by the selected probes that take it; a flag no selected probe takes
// by the catalogue's probes that declare it, any one of them accepting it
// (trace and policy read --from differently).
func (o *CheckOptions) validateInputValues(fs *pflag.FlagSet) error {
	var err error
	fs.Visit(func(f *pflag.Flag) {
		if err != nil {
			return
		}
		checks := declaredChecks(o.selected, f.Name)
		all := len(checks) > 0
		if !all {
			checks = declaredChecks(o.catalogue(), f.Name)
		}
		for _, v := range flagValues(f) {
			if e := checkValue(checks, all, v); e != nil {
				err = usageErrorf("--%s %q %v; pass e.g. --%s %s", f.Name, v, e.err, f.Name, e.example)
				return
			}
		}
	})
	return err
}

// inputError is a value's first failing check, with that input's example.
type inputError struct {
	err     error
	example string
}

// checkValue runs checks on v: every one must accept it when all, else any one.
func checkValue(checks []model.Input, all bool, v string) *inputError {
	var first *inputError
	for _, in := range checks {
		err := in.Check(v)
		if err == nil && !all {
			return nil
		}
		if err != nil && first == nil {
			first = &inputError{err: err, example: in.Example}
		}
	}
	return first
}

// declaredChecks are the inputs named flag, with a Check, of ps.
func declaredChecks(ps []probes.Probe, flag string) []model.Input {
	var out []model.Input
	for _, p := range ps {
		for _, in := range p.Info().Inputs {
			if strings.TrimLeft(in.Flag, "-") == flag && in.Check != nil {
				out = append(out, in)
			}
		}
	}
	return out
}

// flagValues are the values given to f: each element of a repeatable flag.
func flagValues(f *pflag.Flag) []string {
	if s, ok := f.Value.(pflag.SliceValue); ok {
		return s.GetSlice()
	}
	return []string{f.Value.String()}
}
