package agent

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/netsleuth/netsleuth/model"
)

// A run says it is alive with a coordination.k8s.io/v1 Lease named
// netsleuth-<run id> in its agent namespace: its own namespace, or the
// --agent-namespace the user chose. That is the one namespace a run must be
// able to write anyway (its pods go there), so the Lease needs no namespace
// of its own and no extra setup. The run creates it before its first pod
// (right after creating its own namespace), renews it every LeaseRenew while
// it lives, and deletes it when it exits. Another run, and `netsleuth
// cleanup`, judge a run's objects leftovers only once its Lease has expired,
// or when it has none and the objects are older than LeaseDuration.
const (
	// LeaseDuration is how long a Lease vouches for its run after a renewal.
	LeaseDuration = 30 * time.Second
	// LeaseRenew is how often a live run renews its Lease.
	LeaseRenew = 10 * time.Second
)

// rbacLease is what a run's Lease needs: created, renewed (an update, a
// get after a conflict) and deleted at the end.
var rbacLease = []model.Permission{
	{Group: "coordination.k8s.io", Resource: "leases", Verbs: []string{"create", "delete", "get", "update"}},
}

// LeaseName is the name of run runID's Lease.
func LeaseName(runID string) string { return "netsleuth-" + runID }

// holder names who holds a run's Lease, for the people who find it.
func holder(runID string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("netsleuth run %s (pid %d on %s)", runID, os.Getpid(), host)
}

// leaseKeeper renews one run's Lease until it is stopped.
type leaseKeeper struct {
	kube      kubernetes.Interface
	ns, name  string
	interval  time.Duration
	cancel    context.CancelFunc
	done      chan struct{}
	mu        sync.Mutex
	lease     *coordinationv1.Lease
	lastError error
}

// newLease is run runID's Lease in ns, renewed now.
func newLease(ns, runID string, now time.Time) *coordinationv1.Lease {
	t := metav1.NewMicroTime(now)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: LeaseName(runID), Namespace: ns, Labels: labels(runID, "")},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(holder(runID)),
			LeaseDurationSeconds: ptr.To(int32(LeaseDuration / time.Second)),
			AcquireTime:          &t,
			RenewTime:            &t,
		},
	}
}

// startLease creates run runID's Lease in ns and renews it every interval
// until stop. An existing Lease of the same run (a retry) is taken over.
func startLease(ctx context.Context, kube kubernetes.Interface, ns, runID string, interval time.Duration) (*leaseKeeper, error) {
	l := newLease(ns, runID, time.Now())
	got, err := kube.CoordinationV1().Leases(ns).Create(ctx, l, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		got, err = kube.CoordinationV1().Leases(ns).Get(ctx, l.Name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("creating the run's Lease %s/%s (it tells other runs and `netsleuth cleanup` this run is alive): %w", ns, l.Name, err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k := &leaseKeeper{kube: kube, ns: ns, name: l.Name, interval: interval, cancel: cancel, done: make(chan struct{}), lease: got}
	go k.run(rctx)
	return k, nil
}

func (k *leaseKeeper) run(ctx context.Context) {
	defer close(k.done)
	t := time.NewTicker(k.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, k.interval)
		err := k.renew(rctx)
		cancel()
		k.mu.Lock()
		k.lastError = err
		k.mu.Unlock()
	}
}

// renew moves the Lease's renew time to now: an update of the copy it
// holds, and after a conflict or a deletion, of the Lease as it is now.
func (k *leaseKeeper) renew(ctx context.Context) error {
	leases := k.kube.CoordinationV1().Leases(k.ns)
	k.mu.Lock()
	next := k.lease.DeepCopy()
	k.mu.Unlock()
	next.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
	got, err := leases.Update(ctx, next, metav1.UpdateOptions{})
	switch {
	case apierrors.IsConflict(err):
		cur, gerr := leases.Get(ctx, k.name, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		cur.Spec.RenewTime = next.Spec.RenewTime
		got, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
	case apierrors.IsNotFound(err):
		fresh := next.DeepCopy()
		fresh.ResourceVersion, fresh.UID = "", ""
		got, err = leases.Create(ctx, fresh, metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.lease = got
	k.mu.Unlock()
	return nil
}

// stop ends the renewals and deletes the Lease (within ctx): the run is over,
// so whatever it could not delete is a leftover from now on.
func (k *leaseKeeper) stop(ctx context.Context) error {
	if k.cancel != nil {
		k.cancel()
		<-k.done
	}
	err := k.kube.CoordinationV1().Leases(k.ns).Delete(ctx, k.name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the run's Lease %s/%s: %w", k.ns, k.name, err)
	}
	return nil
}

// Run is another netsleuth run seen through its Lease.
type Run struct {
	ID        string
	Namespace string // where its Lease is; empty when it has none yet
	Holder    string
	Renewed   time.Time
	Expires   time.Time
}

// String describes r for a person deciding whether it is really running.
func (r Run) String() string {
	if r.Namespace == "" {
		return fmt.Sprintf("run %s (starting: its objects are under %s old and its Lease is not there yet)", r.ID, LeaseDuration)
	}
	return fmt.Sprintf("run %s (Lease %s/%s held by %s, renewed %s ago, expires in %s)", r.ID, r.Namespace, LeaseName(r.ID),
		orDefault(r.Holder, "nobody"), time.Since(r.Renewed).Round(time.Second), time.Until(r.Expires).Round(time.Second))
}

// leaseRun reads a Lease: its run, when it was last renewed and when it
// expires. A Lease never renewed counts from its creation.
func leaseRun(l coordinationv1.Lease) Run {
	r := Run{ID: l.Labels[LabelRunID], Namespace: l.Namespace, Renewed: l.CreationTimestamp.Time}
	if l.Spec.HolderIdentity != nil {
		r.Holder = *l.Spec.HolderIdentity
	}
	switch {
	case l.Spec.RenewTime != nil:
		r.Renewed = l.Spec.RenewTime.Time
	case l.Spec.AcquireTime != nil:
		r.Renewed = l.Spec.AcquireTime.Time
	}
	d := LeaseDuration
	if l.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	r.Expires = r.Renewed.Add(d)
	return r
}
