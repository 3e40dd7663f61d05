package cmd

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/trace"
)

func newTraceCommand(app App, cf *genericclioptions.ConfigFlags) *cobra.Command {
	o := NewCheckOptions(app, cf)
	name := app.displayName()
	var port string
	c := &cobra.Command{
		Use:   "trace FROM TO",
		Short: "Trace one connection from your workload through every layer to the first broken hop",
		Long: "trace asks the question an engineer asks: can FROM reach TO? It walks the connection layer by layer as the\n" +
			"source itself would meet them, and names the first broken hop with its root cause and fix:\n" +
			"  1. name resolution, through the source's resolv.conf and search path (TO a DNS name)\n" +
			"  2. the Service: its endpoints, port → targetPort, and what the endpoints answer on it\n" +
			"  3. egress policy at the source and ingress policy at the destination (ipBlock off the cluster)\n" +
			"  4. the source node: kube-proxy's rules, forwarding, routes, FORWARD, source NAT\n" +
			"  5. the destination: its node, or the target itself\n" +
			"  6. the connection, sent with the source's identity (a stand-in with its labels on its node, or\n" +
			"     --policy-live=ephemeral: a container in the pod itself), captured when it fails\n\n" +
			"FROM: namespace/pod, namespace/deployment/name (also statefulset, daemonset) or node/NAME.\n" +
			"TO: namespace/pod, namespace/svc/name, an IPv4 address or CIDR, or a DNS name, each with :port[/proto]\n" +
			"(or --port). Exit codes as check: 1 when a hop fails, 2 for bad input (nothing is created).",
		Example: fmt.Sprintf("  %[1]s trace shop/deployment/web shop/svc/api:8080\n  %[1]s trace shop/web-7d9c 192.168.2.10:443\n"+
			"  %[1]s trace shop/web api.payments.svc.cluster.local:443 -o json", name),
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			spec, err := trace.Parse(args[0], args[1], port)
			if err != nil {
				return usageErrorf("%v", err)
			}
			o.From, o.To, o.ProbeIDs = args[0], args[1], []string{trace.ID}
			if err := o.Complete(c); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			o.preflight = func(ctx context.Context, env *probes.Env) error {
				env.Options.TracePort = port
				if _, err := trace.Resolve(ctx, env.Kube, spec); err != nil {
					if trace.IsNotFound(err) {
						return usageErrorf("%v", err)
					}
					return &exitError{code: ExitFailing, msg: oneLine(err.Error()), err: err}
				}
				return nil
			}
			o.finish = func(r *model.Report) { r.Trace = traceOf(r, spec) }
			return o.Run(c.Context())
		},
	}
	o.AddFlags(c.Flags())
	c.Flags().StringVar(&port, "port", "", "the destination `port[/proto]` when TO carries none (default 80/tcp)")
	for _, f := range []string{"probe", "target", "from", "to", "max-pairs", "max-nodes", "metadata-address", "service", "port-profile"} {
		_ = c.Flags().MarkHidden(f)
	}
	return c
}

// traceOf lists the report's hops in order and names the first broken one.
func traceOf(r *model.Report, spec trace.Spec) *model.Trace {
	t := &model.Trace{From: spec.From(), To: spec.To(), Hops: []string{}}
	for _, id := range trace.Hops {
		for _, f := range r.Findings {
			if f.ID != id || f.Probe != trace.ID {
				continue
			}
			t.Hops = append(t.Hops, f.Key)
			if t.Broken == "" && f.Status.Failing() {
				t.Broken = f.Key
			}
		}
	}
	if len(t.Hops) == 0 && slices.ContainsFunc(r.Findings, func(f model.Finding) bool { return f.Status.Failing() }) {
		t.Broken = "the trace could not run (see its error finding)"
	}
	return t
}
