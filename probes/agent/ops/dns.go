package ops

import (
	"context"

	"github.com/netsleuth/netsleuth/probes/dnsquery"
)

// runDNS runs the op's DNS measurement (package dnsquery).
func runDNS(ctx context.Context, o Op) Result {
	r := Result{Op: o}
	if o.DNS == nil {
		r.Outcome, r.Error = Failed, "dns op without a dns spec"
		return r
	}
	res := dnsquery.Run(ctx, *o.DNS)
	r.DNS, r.Outcome = &res, OK
	if res.Error != "" {
		r.Outcome, r.Error = Failed, res.Error
	}
	return r
}
