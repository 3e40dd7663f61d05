package agent

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// podWatch follows a set of pods (one namespace, one selector) with one list
// and one watch, so waiting for any number of agents to start, or to be
// gone, costs two API requests instead of a read every few hundred
// milliseconds per pod.
type podWatch struct {
	inf    cache.SharedIndexInformer
	cancel context.CancelFunc

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every event
}

func newPodWatch(kube kubernetes.Interface, ns string, sel metav1.ListOptions) *podWatch {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector, o.FieldSelector = sel.LabelSelector, sel.FieldSelector
			return kube.CoreV1().Pods(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector, o.FieldSelector = sel.LabelSelector, sel.FieldSelector
			return kube.CoreV1().Pods(ns).Watch(ctx, o)
		},
	}
	w := &podWatch{inf: cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, kube), &corev1.Pod{}, 0, cache.Indexers{}), changed: make(chan struct{})}
	bump := func() {
		w.mu.Lock()
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
	_, _ = w.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { bump() },
		UpdateFunc: func(any, any) { bump() },
		DeleteFunc: func(any) { bump() },
	})
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.inf.RunWithContext(ctx)
	return w
}

// get returns the pod's latest state as the watch saw it, nil when it does
// not exist.
func (w *podWatch) get(ns, name string) *corev1.Pod {
	o, ok, err := w.inf.GetStore().GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	return o.(*corev1.Pod)
}

// empty reports whether no pod matches any more.
func (w *podWatch) empty() bool { return len(w.inf.GetStore().ListKeys()) == 0 }

// until re-evaluates done after the first sync and after every change,
// until it returns true or ctx ends (then it returns ctx's cause).
func (w *podWatch) until(ctx context.Context, done func() bool) error {
	if !cache.WaitForCacheSync(ctx.Done(), w.inf.HasSynced) {
		return context.Cause(ctx)
	}
	for {
		w.mu.Lock()
		ch := w.changed
		w.mu.Unlock()
		if done() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (w *podWatch) stop() { w.cancel() }
