package cmd

import (
	"testing"

	"github.com/spf13/pflag"

	"github.com/netsleuth/netsleuth/model"
)

// A probe whose required inputs are all given joins the default selection;
// one with no required input, or with one missing, does not.
func TestInputsGiven(t *testing.T) {
	external := model.ProbeInfo{ID: "external", Inputs: []model.Input{{Flag: "target", Required: true}}}
	pair := model.ProbeInfo{ID: "pair", Inputs: []model.Input{{Flag: "from", Required: true}, {Flag: "to", Required: true}}}
	optional := model.ProbeInfo{ID: "opt", Inputs: []model.Input{{Flag: "target"}}}
	cases := []struct {
		args []string
		info model.ProbeInfo
		want bool
	}{
		{nil, external, false},
		{[]string{"--target", "10.0.0.1"}, external, true},
		{[]string{"--from", "a/b"}, pair, false},
		{[]string{"--from", "a/b", "--to", "c/d:80"}, pair, true},
		{[]string{"--target", "10.0.0.1"}, optional, false},
	}
	for _, c := range cases {
		o := &CheckOptions{}
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		fs.StringSlice("target", nil, "")
		fs.String("from", "", "")
		fs.String("to", "", "")
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if got := o.inputsGiven(fs, c.info); got != c.want {
			t.Errorf("%s with %v: got %v, want %v", c.info.ID, c.args, got, c.want)
		}
	}
}
