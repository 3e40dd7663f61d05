package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
)

// validateInputValues checks every value given on the command line against
// the probes' declared inputs (model.Input.Check), so a new probe's flags are
// checked like the others, before anything connects or is created. A flag is
// checked by the probes chosen with --probe that take it, each of which must
// accept it; else by the selected (default) probes that take it, or the
// catalogue's when none does, any one of them accepting it: the others do
// not use it (a matrix --from ns/* is the policy probe's alone).
func (o *CheckOptions) validateInputValues(fs *pflag.FlagSet) error {
	var err error
	fs.Visit(func(f *pflag.Flag) {
		if err != nil {
			return
		}
		checks := declaredChecks(o.selected, f.Name)
		all := len(checks) > 0 && len(o.ProbeIDs) > 0
		if len(checks) == 0 {
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

// validateFlagUse checks that each of --target, --from and --to that is
// given is used by a selected probe: one that declares it, accepts its
// value, and has the flag it needs beside it (model.Input.With: the policy
// probe asks about --from only with --to).
func (o *CheckOptions) validateFlagUse() error {
	given := map[string]string{"from": o.From, "to": o.To}
	for _, flag := range []string{"from", "to"} {
		v := given[flag]
		if v == "" {
			continue
		}
		var needs []string
		used := false
		for _, p := range o.selected {
			for _, in := range p.Info().Inputs {
				switch {
				case in.Flag != flag || (in.Check != nil && in.Check(v) != nil):
				case in.With == "" || given[in.With] != "":
					used = true
				default:
					needs = append(needs, fmt.Sprintf("probe %s needs --%s with it", p.Info().ID, in.With))
				}
			}
		}
		if used || len(needs) == 0 {
			continue
		}
		alone := probesTaking(o.catalogue(), flag, v)
		hint := ""
		if len(alone) > 0 {
			hint = fmt.Sprintf(", or add --probe %s to ask from --%s alone", strings.Join(alone, " or --probe "), flag)
		}
		return usageErrorf("--%s %q is used by no selected probe (%s); pass --%s too%s", flag, v, strings.Join(needs, ", "), withOf(o.selected, flag), hint)
	}
	return nil
}

// probesTaking lists the probes of ps that take flag with value v alone.
func probesTaking(ps []probes.Probe, flag, v string) []string {
	var out []string
	for _, p := range ps {
		for _, in := range p.Info().Inputs {
			if in.Flag == flag && in.With == "" && (in.Check == nil || in.Check(v) == nil) {
				out = append(out, p.Info().ID)
			}
		}
	}
	return out
}

// withOf is the flag the selected probes that take flag need beside it.
func withOf(ps []probes.Probe, flag string) string {
	for _, p := range ps {
		for _, in := range p.Info().Inputs {
			if in.Flag == flag && in.With != "" {
				return in.With
			}
		}
	}
	return ""
}
