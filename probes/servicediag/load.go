package servicediag

import (
	"context"
	"fmt"
	"time"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// RBAC is what Load reads.
var RBAC = model.MergePermissions(kube.RBACServices, kube.RBACPods, kube.RBACEndpointSlices,
	kube.RBACDeployments, kube.RBACStatefulSets)

// Load reads what Analyze needs in namespace ns ("" for all) through the
// run's snapshot. Workloads that cannot be listed (RBAC) leave scaled-to-zero
// undetected; the reason is in notes.
func Load(ctx context.Context, s *kube.Snapshot, ns string, now time.Time) (in Input, notes []string, err error) {
	in.Now = now
	if in.Services, err = s.Services(ctx, ns); err != nil {
		return in, nil, err
	}
	if in.Pods, err = s.Pods(ctx, ns); err != nil {
		return in, nil, err
	}
	if in.Slices, err = s.EndpointSlices(ctx, ns); err != nil {
		return in, nil, err
	}
	deps, err := s.Deployments(ctx, ns)
	if err != nil {
		notes = append(notes, fmt.Sprintf("Deployments not listed (%v): a workload scaled to zero is not recognised", err))
	}
	for _, d := range deps {
		in.Workloads = append(in.Workloads, Workload{Kind: "Deployment", Namespace: d.Namespace, Name: d.Name, Replicas: replicas(d.Spec.Replicas), PodLabels: d.Spec.Template.Labels})
	}
	sts, err := s.StatefulSets(ctx, ns)
	if err != nil {
		notes = append(notes, fmt.Sprintf("StatefulSets not listed (%v): a workload scaled to zero is not recognised", err))
	}
	for _, st := range sts {
		in.Workloads = append(in.Workloads, Workload{Kind: "StatefulSet", Namespace: st.Namespace, Name: st.Name, Replicas: replicas(st.Spec.Replicas), PodLabels: st.Spec.Template.Labels})
	}
	return in, notes, nil
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}
