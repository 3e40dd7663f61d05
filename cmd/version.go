package cmd

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// Set at build time with -ldflags "-X github.com/netsleuth/netsleuth/cmd.version=...".
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

// VersionInfo is what `version -o json` prints.
type VersionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func newVersionCommand(app App) *cobra.Command {
	output := "text"
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			v := VersionInfo{version, commit, date, runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH}
			switch output {
			case "text":
				fmt.Fprintf(app.Streams.Out, "%s %s (commit %s, built %s, %s %s)\n", app.displayName(), v.Version, v.Commit, v.Date, v.GoVersion, v.Platform)
				return nil
			case "json":
				b, err := json.MarshalIndent(v, "", "  ")
				if err != nil {
					return &exitError{code: ExitFailing, msg: "cannot encode the version", err: err}
				}
				fmt.Fprintln(app.Streams.Out, string(b))
				return nil
			}
			return usageErrorf("unknown output format %q for version; use -o text or -o json", output)
		},
	}
	c.Flags().StringVarP(&output, "output", "o", output, "output `format`: text, json")
	return c
}
