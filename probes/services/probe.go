// Package services is the Services and EndpointSlices probe (scenario L): it
// finds Services whose selector matches nothing, whose pods are all not
// ready, whose named targetPort no pod declares, and whose EndpointSlices
// disagree with pod readiness.
package services

import (
	"context"
	"time"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/servicediag"
)

// ID is the probe's identifier for --probe.
const ID = "services"

type probe struct{ now func() time.Time }

// New returns the services probe.
func New() probes.Probe { return probe{now: time.Now} }

func (probe) Info() model.ProbeInfo {
	return model.ProbeInfo{
		ID:       ID,
		Title:    "Services and EndpointSlices",
		Scenario: "L",
		Description: "For every Service: a selector that matches no pod (with near-miss labels, or the workload scaled to zero), selected " +
			"pods of which none is Ready (and why), a named targetPort no pod declares, and EndpointSlices " +
			"that disagree with pod readiness for longer than a minute. Honours --namespace.",
		RBAC:    servicediag.RBAC,
		Default: true,
	}
}

func (p probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("listing services, pods, endpointslices and workloads")
	in, notes, err := servicediag.Load(ctx, env.Snap(), env.Namespace, p.now())
	if err != nil {
		return err
	}
	// netsleuth's own temporary Services (pod-to-service) are not the user's.
	svcs := in.Services[:0]
	for _, s := range in.Services {
		if s.Labels[agent.LabelManagedBy] != agent.ManagedBy {
			svcs = append(svcs, s)
		}
	}
	in.Services = svcs
	for _, f := range servicediag.Analyze(in) {
		if f.Status != model.StatusPass && f.Status != model.StatusSkip {
			f.Evidence = append(f.Evidence, notes...)
		}
		rec.Finding(f)
	}
	return nil
}
