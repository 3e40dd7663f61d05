package podtoservice

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/servicediag"
)

// endpointsTimeout bounds the wait for the temporary Service's endpoints.
var endpointsTimeout = 20 * time.Second

// service returns the Service under test: --service, or a temporary one in
// front of the pod agents. A Service that cannot be used is a finding.
// rbacService is what the temporary Service (created, read back, deleted),
// a --service read, and their EndpointSlices need.
var rbacService = model.MergePermissions(servicediag.RBACEndpoints, []model.Permission{
	{Resource: "services", Verbs: []string{"create", "delete", "get"}},
	{Group: "discovery.k8s.io", Resource: "endpointslices", Verbs: []string{"watch"}},
})

// service waits for the endpoints of the temporary Service svc, made while
// the agents pods started: one per pod. An agent lost meanwhile (its pod
// deleted, say) ends the wait with that error; when time runs out the
// endpoints there are are used.
func service(ctx context.Context, env *probes.Env, rec probes.Recorder, svc Service, pods []probes.Agent) (Service, *model.Finding, error) {
	if env.Options.Service != "" {
		return userService(ctx, env, rec, env.Options.Service)
	}
	if len(pods) == 0 {
		return Service{}, nil, nil
	}
	rec.Stage(fmt.Sprintf("waiting for the endpoints of Service %s", svc.Ref()))
	wctx, cancel := context.WithTimeout(ctx, endpointsTimeout)
	defer cancel()
	lost := func() error { return agent.LostAmong(env, pods...) }
	bs, done, err := watchBackends(wctx, env, svc, len(pods), lost)
	svc.Backends = bs
	switch {
	case err != nil:
		return svc, nil, err
	case done:
		return svc, nil, nil
	}
	var last error // the last read's error; one the API server did not answer is waited out
	err = wait.PollUntilContextCancel(wctx, 300*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := lost(); err != nil {
			return false, err
		}
		bs, err := backends(ctx, env, svc)
		if last = err; err != nil {
			return false, probes.IgnoreUnreachable(err)
		}
		svc.Backends = bs
		return len(bs) >= len(pods), nil
	})
	if ctx.Err() != nil {
		return svc, nil, context.Cause(ctx)
	}
	if err := lost(); err != nil {
		return svc, nil, err
	}
	if last != nil && len(svc.Backends) == 0 {
		return svc, nil, fmt.Errorf("reading the endpoints of Service %s: %w", svc.Ref(), last)
	}
	return svc, nil, nil
}

// watchBackends waits for want ready endpoints of svc through one watch of
// its EndpointSlices (the server sends the slices there are, then their
// changes): one request where polling makes several. It returns the ready
// endpoints it saw last, done when they are want, and lost's error when a
// change comes with an agent lost. Not done and no error: the watch could
// not be had or ended first (the caller polls while time is left).
func watchBackends(ctx context.Context, env *probes.Env, svc Service, want int, lost func() error) (bs []Backend, done bool, err error) {
	w, err := env.Kube.DiscoveryV1().EndpointSlices(svc.Namespace).Watch(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name})
	if err != nil {
		return nil, false, nil
	}
	defer w.Stop()
	seen := map[string]discoveryv1.EndpointSlice{}
	for {
		var ev watch.Event
		select {
		case <-ctx.Done():
			return bs, false, nil
		case e, open := <-w.ResultChan():
			if !open {
				return bs, false, nil
			}
			ev = e
		}
		sl, isSlice := ev.Object.(*discoveryv1.EndpointSlice)
		switch {
		case !isSlice:
			return bs, false, nil // an error event: the watch is over
		case ev.Type == watch.Deleted:
			delete(seen, sl.Name)
		default:
			seen[sl.Name] = *sl
		}
		bs = servicediag.ReadyEndpoints(byName(seen), svc.PortName, MaxBackends)
		if len(bs) >= want {
			return bs, true, nil
		}
		if err := lost(); err != nil {
			return bs, false, err
		}
	}
}

// byName lists m's slices in the order of their names.
func byName(m map[string]discoveryv1.EndpointSlice) []discoveryv1.EndpointSlice {
	out := make([]discoveryv1.EndpointSlice, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[name])
	}
	return out
}

// TempName is the temporary Service's name for a run.
func TempName(runID string) string {
	n := "netsleuth-svc-" + strings.ToLower(runID)
	return n[:min(len(n), 63)]
}

// createService creates a NodePort Service selecting the run's pod agents
// (readying their namespace first), labelled so `netsleuth cleanup` finds
// it, and deletes it after the probe.
func createService(ctx context.Context, env *probes.Env, rec probes.Recorder) (Service, error) {
	ns := env.Agents.Namespace()
	if err := env.Agents.Prepare(ctx); err != nil {
		return Service{}, err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: TempName(env.RunID), Namespace: ns,
			Labels: map[string]string{agent.LabelManagedBy: agent.ManagedBy, agent.LabelRunID: env.RunID}},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{agent.LabelRunID: env.RunID, agent.LabelKind: string(probes.AgentPod)},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80,
				TargetPort: intstr.FromInt32(agent.HTTPPort)}},
		},
	}
	rec.Stage(fmt.Sprintf("creating the temporary NodePort Service %s/%s in front of the pod agents", ns, svc.Name))
	created, err := env.Kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = env.Kube.CoreV1().Services(ns).Get(ctx, svc.Name, metav1.GetOptions{})
	}
	if err != nil {
		return Service{}, fmt.Errorf("creating the temporary Service %s/%s: %w", ns, svc.Name, err)
	}
	rec.Cleanup(func(ctx context.Context) error {
		err := env.Kube.CoreV1().Services(ns).Delete(ctx, svc.Name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	return fromService(created, true), nil
}

// fromService describes the first TCP port of s.
func fromService(s *corev1.Service, temporary bool) Service {
	out := Service{Namespace: s.Namespace, Name: s.Name, ClusterIP: s.Spec.ClusterIP, Temporary: temporary}
	for _, p := range s.Spec.Ports {
		if p.Protocol == corev1.ProtocolTCP || p.Protocol == "" {
			out.PortName, out.Port, out.NodePort = p.Name, int(p.Port), int(p.NodePort)
			break
		}
	}
	return out
}

// userService reads the Service --service names and its ready endpoints.
func userService(ctx context.Context, env *probes.Env, rec probes.Recorder, ref string) (Service, *model.Finding, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" {
		return Service{}, unusable(ref, "--service must be namespace/name", "netsleuth check --probe pod-to-service --service default/my-service"), nil
	}
	rec.Stage("reading Service " + ref)
	s, err := env.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Service{}, unusable(ref, "Service "+ref+" does not exist", "kubectl get services -A"), nil
	}
	if err != nil {
		return Service{}, nil, err
	}
	svc := fromService(s, false)
	switch {
	case s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone:
		return svc, unusable(ref, "Service "+ref+" is headless (clusterIP: None): kube-proxy does not handle it", "netsleuth check --probe dns"), nil
	case svc.Port == 0:
		return svc, unusable(ref, "Service "+ref+" has no TCP port", "kubectl -n "+ns+" get service "+name+" -o yaml"), nil
	}
	svc.Backends, err = backends(ctx, env, svc)
	return svc, nil, err
}

func unusable(ref, why, cmd string) *model.Finding {
	ns, name, _ := strings.Cut(ref, "/")
	return &model.Finding{ID: IDBadService, Status: model.StatusError, Subject: &model.Subject{Kind: "Service", Namespace: ns, Name: name},
		Title: "The Service to test cannot be used: " + why, RootCause: why + ", so no Service traffic was sent.",
		Fixes: []model.Fix{{Description: "Pick a ClusterIP Service with a TCP port, or leave --service out to use a temporary one:", Commands: []string{cmd}}}}
}

// backends lists the ready endpoints of svc's port from its EndpointSlices.
func backends(ctx context.Context, env *probes.Env, svc Service) ([]Backend, error) {
	return servicediag.ListEndpoints(ctx, env.Kube, svc.Namespace, svc.Name, svc.PortName, MaxBackends)
}
