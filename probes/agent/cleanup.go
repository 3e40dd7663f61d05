package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/netsleuth/netsleuth/model"
	k8s "github.com/netsleuth/netsleuth/probes/kube"
)

// rbacFind is what Find needs.
var rbacFind = []model.Permission{
	{Resource: "namespaces", Verbs: []string{"list"}},
	{Resource: "pods", Verbs: []string{"list"}},
	{Resource: "services", Verbs: []string{"list"}},
	{Group: "coordination.k8s.io", Resource: "leases", Verbs: []string{"list"}},
}

// RBACCleanup is what Cleanup (the cleanup command) needs.
var RBACCleanup = model.MergePermissions(rbacFind, []model.Permission{
	{Resource: "namespaces", Verbs: []string{"delete", "get"}},
	{Resource: "pods", Verbs: []string{"delete", "deletecollection"}},
	{Resource: "services", Verbs: []string{"delete"}},
	{Group: "coordination.k8s.io", Resource: "leases", Verbs: []string{"delete"}},
})

// Survey is what other netsleuth runs have in the cluster, judged by their
// Leases: the objects of runs that are over, and the runs still alive.
type Survey struct {
	// Leftovers are the objects of runs that are over, as kind/ns/name:
	// their Lease expired, or they have none and are older than
	// LeaseDuration, or they carry no run ID at all.
	Leftovers []string
	// Live are the runs alive now, by ID; their objects are left alone.
	Live []Run

	namespaces []string
	pods       []object
	services   []object
	leases     []object
}

type object struct{ ns, name string }

// Listing is every object netsleuth labelled, as the API server listed them.
type Listing struct {
	Namespaces []corev1.Namespace
	Pods       []corev1.Pod
	Services   []corev1.Service
	Leases     []coordinationv1.Lease
}

// Classify judges every object of l but run except's at now: a run is alive
// while its Lease has not expired, and for LeaseDuration after its first
// object when it has no Lease yet (a run creates its Lease right after its
// namespace). A namespace on its way out (deleted under terminatingGrace
// ago) is neither; pods, services and Leases inside a leftover namespace go
// with it and are not listed on their own.
func Classify(l Listing, except string, now time.Time) Survey {
	runs := map[string]Run{}
	for _, le := range l.Leases {
		r := leaseRun(le)
		if old, ok := runs[r.ID]; r.ID != "" && (!ok || r.Expires.After(old.Expires)) {
			runs[r.ID] = r
		}
	}
	live := map[string]Run{}
	dead := func(runID string, created time.Time) bool {
		if runID == "" {
			return true // nothing vouches for it
		}
		if r, ok := runs[runID]; ok {
			if now.Before(r.Expires) {
				live[runID] = r
				return false
			}
			return true
		}
		if now.Sub(created) < LeaseDuration {
			live[runID] = Run{ID: runID}
			return false
		}
		return true
	}
	var s Survey
	skip := map[string]bool{} // namespaces whose contents are not judged apart
	for _, n := range l.Namespaces {
		id := n.Labels[LabelRunID]
		switch {
		case id == except && id != "":
		case terminating(n, now):
			skip[n.Name] = true // its run deleted it; the namespace controller finishes the job
		case dead(id, n.CreationTimestamp.Time):
			skip[n.Name] = true
			s.namespaces = append(s.namespaces, n.Name)
			s.Leftovers = append(s.Leftovers, "namespace/"+n.Name)
		}
	}
	judge := func(kind string, m metav1.ObjectMeta, into *[]object) {
		id := m.Labels[LabelRunID]
		if skip[m.Namespace] || (id == except && id != "") || !dead(id, m.CreationTimestamp.Time) {
			return
		}
		*into = append(*into, object{m.Namespace, m.Name})
		s.Leftovers = append(s.Leftovers, kind+"/"+m.Namespace+"/"+m.Name)
	}
	for _, p := range l.Pods {
		judge("pod", p.ObjectMeta, &s.pods)
	}
	for _, sv := range l.Services {
		judge("service", sv.ObjectMeta, &s.services)
	}
	for _, le := range l.Leases {
		r := leaseRun(le)
		if skip[le.Namespace] || (r.ID == except && r.ID != "") || now.Before(r.Expires) {
			continue
		}
		s.leases = append(s.leases, object{le.Namespace, le.Name})
		s.Leftovers = append(s.Leftovers, "lease/"+le.Namespace+"/"+le.Name)
	}
	for _, id := range slices.Sorted(maps.Keys(live)) {
		s.Live = append(s.Live, live[id])
	}
	return s
}

// List lists every Lease, namespace, pod and service labelled Selector. The
// Leases go first: a run that ends between the reads then has its Lease
// seen alive, not its objects seen without one.
func List(ctx context.Context, kube kubernetes.Interface) (Listing, error) {
	var l Listing
	leases, err := listLeases(ctx, kube)
	if err != nil {
		return l, err
	}
	sel := metav1.ListOptions{LabelSelector: Selector}
	nss, err := kube.CoreV1().Namespaces().List(ctx, sel)
	if err != nil {
		return l, fmt.Errorf("listing namespaces labelled %s: %w", Selector, err)
	}
	pods, err := kube.CoreV1().Pods("").List(ctx, sel)
	if err != nil {
		return l, fmt.Errorf("listing pods labelled %s: %w", Selector, err)
	}
	svcs, err := kube.CoreV1().Services("").List(ctx, sel)
	if err != nil {
		return l, fmt.Errorf("listing services labelled %s: %w", Selector, err)
	}
	return Listing{Namespaces: nss.Items, Pods: pods.Items, Services: svcs.Items, Leases: leases}, nil
}

func listLeases(ctx context.Context, kube kubernetes.Interface) ([]coordinationv1.Lease, error) {
	l, err := kube.CoordinationV1().Leases("").List(ctx, metav1.ListOptions{LabelSelector: Selector})
	if err != nil {
		return nil, fmt.Errorf("listing the runs' Leases labelled %s: %w", Selector, err)
	}
	return l.Items, nil
}

// Find lists what netsleuth runs other than exceptRunID left in the cluster
// and which runs are alive, now.
func Find(ctx context.Context, kube kubernetes.Interface, exceptRunID string) (Survey, error) {
	l, err := List(ctx, kube)
	if err != nil {
		return Survey{}, err
	}
	return Classify(l, exceptRunID, time.Now()), nil
}

// FindIn is Find for a run whose other probes have listed every namespace,
// pod and Service already (snap, which may be nil): it lists only the
// Leases and judges the labelled objects of those lists. The lists may
// predate a run that has since ended cleanly, so a verdict of leftovers is
// made again from a fresh Find.
func FindIn(ctx context.Context, kube kubernetes.Interface, exceptRunID string, snap *k8s.Snapshot) (Survey, error) {
	if snap == nil {
		return Find(ctx, kube, exceptRunID)
	}
	nss, pods, svcs, ok := snap.Labelled(ctx, Selector)
	if !ok {
		return Find(ctx, kube, exceptRunID)
	}
	leases, err := listLeases(ctx, kube)
	if err != nil {
		return Survey{}, err
	}
	s := Classify(Listing{Namespaces: nss, Pods: pods, Services: svcs, Leases: leases}, exceptRunID, time.Now())
	if len(s.Leftovers) == 0 {
		return s, nil
	}
	return Find(ctx, kube, exceptRunID)
}

// terminatingGrace is how long a deleted namespace may take to go before
// it counts as debris again (stuck on a finalizer, say).
const terminatingGrace = 5 * time.Minute

// terminating reports whether ns was deleted recently and is on its way out.
func terminating(ns corev1.Namespace, now time.Time) bool {
	d := ns.DeletionTimestamp
	return d != nil && now.Sub(d.Time) < terminatingGrace
}

// Cleanup deletes what runs that are over left in the cluster: their
// namespaces, their pods, services and Leases elsewhere. Live runs' objects
// are left alone. It returns the survey (its Leftovers are what it deleted);
// with dryRun it only surveys.
func Cleanup(ctx context.Context, kube kubernetes.Interface, dryRun bool) (Survey, error) {
	s, err := Find(ctx, kube, "")
	if err != nil || dryRun {
		return s, err
	}
	zero := metav1.DeleteOptions{GracePeriodSeconds: new(int64)}
	var errs []error
	for _, n := range s.namespaces {
		if err := kube.CoreV1().Pods(n).DeleteCollection(ctx, zero, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
		if err := kube.CoreV1().Namespaces().Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	for _, p := range s.pods {
		if err := kube.CoreV1().Pods(p.ns).Delete(ctx, p.name, zero); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	for _, sv := range s.services {
		if err := kube.CoreV1().Services(sv.ns).Delete(ctx, sv.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	for _, le := range s.leases {
		if err := kube.CoordinationV1().Leases(le.ns).Delete(ctx, le.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	for _, n := range s.namespaces {
		errs = append(errs, waitGone(ctx, kube, n))
	}
	return s, errors.Join(errs...)
}

// deleteServices deletes the services matching sel in ns.
func deleteServices(ctx context.Context, kube kubernetes.Interface, ns string, sel metav1.ListOptions) error {
	l, err := kube.CoreV1().Services(ns).List(ctx, sel)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range l.Items {
		if err := kube.CoreV1().Services(ns).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitGone waits until namespace ns no longer exists, within ctx.
func waitGone(ctx context.Context, kube kubernetes.Interface, ns string) error {
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("namespace %s is still terminating: %w", ns, err)
	}
	return nil
}
