package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	netlisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
)

const (
	debounceDelay = 200 * time.Millisecond
	retryDelay    = 2 * time.Second
)

// applier is the data-plane side of the controller (IPTables in production).
type applier interface {
	Apply(ctx context.Context, rs Ruleset) (bool, error)
}

type controller struct {
	node    string
	prefix  string
	resync  time.Duration
	ipt     applier
	log     *slog.Logger
	factory informers.SharedInformerFactory
	pods    corelisters.PodLister
	nss     corelisters.NamespaceLister
	pols    netlisters.NetworkPolicyLister
	trigger chan struct{}
	last    string
}

func newController(cs kubernetes.Interface, node, prefix string, resync time.Duration, ipt applier, log *slog.Logger) (*controller, error) {
	f := informers.NewSharedInformerFactory(cs, 0)
	c := &controller{
		node: node, prefix: prefix, resync: resync, ipt: ipt, log: log, factory: f,
		pods:    f.Core().V1().Pods().Lister(),
		nss:     f.Core().V1().Namespaces().Lister(),
		pols:    f.Networking().V1().NetworkPolicies().Lister(),
		trigger: make(chan struct{}, 1),
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.kick() },
		UpdateFunc: func(any, any) { c.kick() },
		DeleteFunc: func(any) { c.kick() },
	}
	for _, inf := range []cache.SharedIndexInformer{
		f.Core().V1().Pods().Informer(),
		f.Core().V1().Namespaces().Informer(),
		f.Networking().V1().NetworkPolicies().Informer(),
	} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, fmt.Errorf("add event handler: %w", err)
		}
	}
	return c, nil
}

// kick requests a re-render without blocking; pending kicks coalesce.
func (c *controller) kick() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

func (c *controller) start(ctx context.Context) error {
	c.factory.Start(ctx.Done())
	for typ, ok := range c.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("informer cache for %v did not sync", typ)
		}
	}
	return nil
}

// snapshot copies informer state into renderer input.
func (c *controller) snapshot() (Input, error) {
	in := Input{Node: c.node, Prefix: c.prefix}
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return in, fmt.Errorf("list pods: %w", err)
	}
	for _, p := range pods {
		if pp, ok := podFromKube(p); ok {
			in.Pods = append(in.Pods, pp)
		}
	}
	nss, err := c.nss.List(labels.Everything())
	if err != nil {
		return in, fmt.Errorf("list namespaces: %w", err)
	}
	for _, ns := range nss {
		in.Namespaces = append(in.Namespaces, Namespace{Name: ns.Name, Labels: ns.Labels})
	}
	pols, err := c.pols.List(labels.Everything())
	if err != nil {
		return in, fmt.Errorf("list network policies: %w", err)
	}
	for _, p := range pols {
		in.Policies = append(in.Policies, networkingv1.NetworkPolicy{ObjectMeta: p.ObjectMeta, Spec: p.Spec})
	}
	return in, nil
}

// sync renders and applies. Unchanged output is re-applied only when force
// is set (periodic resync repairs drift, e.g. a deleted jump).
func (c *controller) sync(ctx context.Context, force bool) error {
	in, err := c.snapshot()
	if err != nil {
		return err
	}
	rs := Render(in)
	text := RestoreText(rs, nil)
	changed := text != c.last
	if !changed && !force {
		return nil
	}
	start := time.Now()
	moved, err := c.ipt.Apply(ctx, rs)
	if err != nil {
		c.last = ""
		return err
	}
	c.last = text
	level := slog.LevelDebug
	if changed || moved {
		level = slog.LevelInfo
	}
	c.log.Log(ctx, level, "ruleset applied",
		"node", c.node, "changed", changed, "policies", rs.Stats.Policies,
		"ingressIsolated", rs.Stats.IngressIsolated, "egressIsolated", rs.Stats.EgressIsolated,
		"chains", len(rs.Chains), "rules", rs.Stats.Rules, "jumpPlaced", moved,
		"applyTime", time.Since(start).Round(time.Millisecond))
	if changed {
		for _, w := range rs.Warnings {
			c.log.Warn("policy not fully enforceable", "detail", w)
		}
	}
	return nil
}

// run applies once, then re-renders on changes (debounced) and on resync
// ticks until ctx ends.
func (c *controller) run(ctx context.Context) error {
	if err := c.sync(ctx, true); err != nil {
		return err
	}
	tick := time.NewTicker(c.resync)
	defer tick.Stop()
	var pending <-chan time.Time
	for {
		force := false
		select {
		case <-ctx.Done():
			return nil
		case <-c.trigger:
			if pending == nil {
				pending = time.After(debounceDelay)
			}
			continue
		case <-pending:
		case <-tick.C:
			force = true
		}
		pending = nil
		if err := c.sync(ctx, force); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Error("sync failed, retrying", "err", err, "in", retryDelay)
			pending = time.After(retryDelay)
		}
	}
}
