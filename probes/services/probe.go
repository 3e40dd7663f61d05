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
	"github.com/netsleuth/netsleuth/probes/kube"
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
		Description: "For every Service: a selector that matches no pod (with near-miss labels), selected " +
			"pods of which none is Ready (and why), a named targetPort no pod declares, and EndpointSlices " +
			"that disagree with pod readiness for longer than a minute. Honours --namespace.",
		RBAC: []model.Permission{
			{Resource: "services", Verbs: []string{"list"}},
			{Resource: "pods", Verbs: []string{"list"}},
			{Group: "discovery.k8s.io", Resource: "endpointslices", Verbs: []string{"list"}},
		},
		Default: true,
	}
}

func (p probe) Run(ctx context.Context, env *probes.Env, rec probes.Recorder) error {
	rec.Stage("listing services")
	all, err := kube.Services(ctx, env.Kube, env.Namespace)
	if err != nil {
		return err
	}
	// netsleuth's own temporary Services (pod-to-service) are not the user's.
	svcs := all[:0]
	for _, s := range all {
		if s.Labels[agent.LabelManagedBy] != agent.ManagedBy {
			svcs = append(svcs, s)
		}
	}
	rec.Stage("listing pods")
	pods, err := kube.Pods(ctx, env.Kube, env.Namespace, "")
	if err != nil {
		return err
	}
	rec.Stage("listing endpointslices")
	slices, err := kube.EndpointSlices(ctx, env.Kube, env.Namespace)
	if err != nil {
		return err
	}
	for _, f := range Analyze(Input{Services: svcs, Pods: pods, Slices: slices, Now: p.now()}) {
		rec.Finding(f)
	}
	return nil
}
