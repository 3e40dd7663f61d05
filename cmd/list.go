package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/netsleuth/netsleuth/model"
)

func newProbesCommand(app App) *cobra.Command {
	output := "text"
	c := &cobra.Command{
		Use:     "probes",
		Aliases: []string{"list"},
		Short:   "List the probes: ID, scenario, whether it runs by default, RBAC and extra flags",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			infos := []model.ProbeInfo{}
			for _, p := range app.Probes() {
				infos = append(infos, p.Info())
			}
			switch output {
			case "text":
				return writeProbeTable(app.Streams.Out, infos)
			case "json":
				enc := json.NewEncoder(app.Streams.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(infos); err != nil {
					return &exitError{code: ExitFailing, msg: "cannot write the probe list", err: err}
				}
				return nil
			}
			return usageErrorf("unknown output format %q for probes; use -o text or -o json", output)
		},
	}
	c.Flags().StringVarP(&output, "output", "o", output, "output `format`: text, json")
	return c
}

// writeProbeTable prints one row per probe.
func writeProbeTable(w io.Writer, infos []model.ProbeInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSCENARIO\tDEFAULT\tTITLE\tRBAC\tFLAGS")
	for _, in := range infos {
		def := "no"
		if in.Default {
			def = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Scenario, def, in.Title, rbacSummary(in.RBAC), inputSummary(in.Inputs))
	}
	if err := tw.Flush(); err != nil {
		return &exitError{code: ExitFailing, msg: "cannot write the probe list", err: err}
	}
	return nil
}

// rbacSummary renders permissions as "list pods; get nodes/proxy".
func rbacSummary(ps []model.Permission) string {
	var out []string
	for _, p := range ps {
		res := p.Resource
		if p.Group != "" {
			res += "." + p.Group
		}
		if p.Subresource != "" {
			res += "/" + p.Subresource
		}
		out = append(out, strings.Join(p.Verbs, ",")+" "+res)
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, "; ")
}

func inputSummary(ins []model.Input) string {
	var out []string
	for _, in := range ins {
		f := "--" + strings.TrimLeft(in.Flag, "-")
		if in.Required {
			f += " (required)"
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ", ")
}
