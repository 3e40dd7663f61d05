package cmd

//go:generate go run ../hack/rbacgen

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/rbac"
)

// RBACManifests renders the two ClusterRoles from the probes' declared RBAC:
// netsleuth-view (every read) and netsleuth-active (that, what the agents
// create, and what `netsleuth cleanup` deletes). assets/rbac holds them.
func RBACManifests(ps []probes.Probe) (view, active []byte, err error) {
	infos := make([]model.ProbeInfo, len(ps))
	for i, p := range ps {
		infos[i] = p.Info()
	}
	view, err = rbac.YAML(rbac.ClusterRole(rbac.ViewRole, rbac.View(infos)),
		"what every probe reads; enough for `netsleuth check --read-only`.")
	if err != nil {
		return nil, nil, err
	}
	active, err = rbac.YAML(rbac.ClusterRole(rbac.ActiveRole, rbac.Active(infos, agent.RBACCleanup)),
		"netsleuth-view plus what the agents of the active probes and `netsleuth cleanup` create and delete.")
	return view, active, err
}

func newRBACCommand(app App) *cobra.Command {
	name := app.displayName()
	var active bool
	c := &cobra.Command{
		Use:   "rbac",
		Short: "Print the ClusterRole netsleuth needs (netsleuth-view, or netsleuth-active with --active)",
		Long: "rbac prints a ClusterRole made from the permissions every probe declares.\n\n" +
			"netsleuth-view grants only reads (get, list) and is enough for `" + name + " check --read-only`;\n" +
			"netsleuth-active adds what the active probes' agents need: a namespace, pods, exec into them,\n" +
			"ephemeral containers, stand-in pods and a temporary Service, all deleted at the end of the run.",
		Example: fmt.Sprintf("  %[1]s rbac | kubectl apply -f -\n  %[1]s rbac --active | kubectl apply -f -", name),
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			view, act, err := RBACManifests(app.Probes())
			if err != nil {
				return err
			}
			out := view
			if active {
				out = act
			}
			_, err = app.Streams.Out.Write(out)
			return err
		},
	}
	c.Flags().BoolVar(&active, "active", false, "print netsleuth-active (the active probes' agents) instead of netsleuth-view")
	return c
}
