package kube

import (
	"context"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Workload is the top-level object that owns a pod: a Deployment,
// DaemonSet, StatefulSet, CronJob, Job, or the bare Pod itself.
type Workload struct {
	Kind      string
	Namespace string
	Name      string
	// Inferred is true when the owner was derived from naming conventions
	// because the intermediate object could not be read.
	Inferred bool
}

// String renders the workload as Kind namespace/name.
func (w Workload) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// OwnerGetter returns the controller reference of the namespaced object kind
// ns/name (a ReplicaSet or a Job); ok is false when it has none, err is set
// when it could not be read.
type OwnerGetter func(ctx context.Context, kind, ns, name string) (ref *metav1.OwnerReference, err error)

// WorkloadResolver walks ownerReferences from a pod to its top-level
// workload, caching each intermediate object it reads.
type WorkloadResolver struct {
	get   OwnerGetter
	cache map[string]ownerResult
}

type ownerResult struct {
	ref *metav1.OwnerReference
	err error
}

// RBACWorkloads is what NewWorkloadResolver reads.
var RBACWorkloads = []model.Permission{
	{Group: "apps", Resource: "replicasets", Verbs: []string{"get"}},
	{Group: "batch", Resource: "jobs", Verbs: []string{"get"}},
}

// NewWorkloadResolver resolves owners with c, reading ReplicaSets (apps) and
// Jobs (batch) with get.
func NewWorkloadResolver(c kubernetes.Interface) *WorkloadResolver {
	return NewWorkloadResolverWith(func(ctx context.Context, kind, ns, name string) (*metav1.OwnerReference, error) {
		var refs []metav1.OwnerReference
		switch kind {
		case "ReplicaSet":
			rs, err := c.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			refs = rs.OwnerReferences
		case "Job":
			j, err := c.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			refs = j.OwnerReferences
		}
		return controllerOf(refs), nil
	})
}

// NewWorkloadResolverWith resolves owners with a custom getter (tests).
func NewWorkloadResolverWith(get OwnerGetter) *WorkloadResolver {
	return &WorkloadResolver{get: get, cache: map[string]ownerResult{}}
}

// Resolve returns the workload that owns pod. ReplicaSets are followed to
// their Deployment and Jobs to their CronJob; when the ReplicaSet cannot be
// read, the Deployment name is derived from the pod-template-hash suffix.
func (r *WorkloadResolver) Resolve(ctx context.Context, pod *corev1.Pod) Workload {
	ref := controllerOf(pod.OwnerReferences)
	if ref == nil {
		return Workload{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name}
	}
	w := Workload{Kind: ref.Kind, Namespace: pod.Namespace, Name: ref.Name}
	if ref.Kind != "ReplicaSet" && ref.Kind != "Job" {
		return w
	}
	key := ref.Kind + "/" + pod.Namespace + "/" + ref.Name
	res, ok := r.cache[key]
	if !ok {
		res.ref, res.err = r.get(ctx, ref.Kind, pod.Namespace, ref.Name)
		r.cache[key] = res
	}
	switch {
	case res.err == nil && res.ref != nil:
		return Workload{Kind: res.ref.Kind, Namespace: pod.Namespace, Name: res.ref.Name}
	case res.err == nil:
		return w // a bare ReplicaSet or Job
	case ref.Kind == "ReplicaSet":
		if h := pod.Labels["pod-template-hash"]; h != "" && strings.HasSuffix(ref.Name, "-"+h) {
			return Workload{Kind: "Deployment", Namespace: pod.Namespace, Name: strings.TrimSuffix(ref.Name, "-"+h), Inferred: true}
		}
	}
	return w
}

func controllerOf(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	return nil
}
