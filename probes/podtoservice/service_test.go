package podtoservice

import (
	"context"
	"errors"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/probetest"
)

var twoPods = []probes.Agent{{Kind: probes.AgentPod, Node: "n1", Pod: "a"}, {Kind: probes.AgentPod, Node: "n2", Pod: "b"}}

// quiet is a Recorder that keeps nothing.
type quiet struct{}

func (quiet) Stage(string)                            {}
func (quiet) Finding(model.Finding)                   {}
func (quiet) Cleanup(func(ctx context.Context) error) {}

func readySlice(name string, ips ...string) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns",
		Labels: map[string]string{discoveryv1.LabelServiceName: "tmp"}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8766)}}}
	for _, ip := range ips {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	return sl
}

func verbs(cs *fake.Clientset) map[string]int {
	out := map[string]int{}
	for _, a := range cs.Actions() {
		if a.GetResource().Resource == "endpointslices" {
			out[a.GetVerb()]++
		}
	}
	return out
}

// TestServiceWaitsThroughOneWatch: the temporary Service's endpoints are
// waited for through one watch of its EndpointSlices, which sees them as
// the controller writes them.
func TestServiceWaitsThroughOneWatch(t *testing.T) {
	cs := fake.NewClientset()
	env := &probes.Env{Kube: cs}
	go func() {
		for verbs(cs)["watch"] == 0 { // the fake, unlike a server, sends no slice made before its watch
			time.Sleep(5 * time.Millisecond)
		}
		ctx := context.Background()
		_, _ = cs.DiscoveryV1().EndpointSlices("ns").Create(ctx, readySlice("tmp-a", "10.244.0.5"), metav1.CreateOptions{})
		time.Sleep(50 * time.Millisecond)
		_, _ = cs.DiscoveryV1().EndpointSlices("ns").Update(ctx, readySlice("tmp-a", "10.244.0.5", "10.244.1.5"), metav1.UpdateOptions{})
	}()
	svc, f, err := service(context.Background(), env, quiet{}, Service{Namespace: "ns", Name: "tmp", PortName: "http", Temporary: true}, twoPods)
	if err != nil || f != nil || len(svc.Backends) != 2 || svc.Backends[1].IP != "10.244.1.5" {
		t.Fatalf("backends %+v, finding %v, err %v", svc.Backends, f, err)
	}
	if got := verbs(cs); got["watch"] != 1 || got["list"] != 0 {
		t.Errorf("endpointslices requests %v, want one watch", got)
	}
}

// A watch the server refuses (a role without watch, say) leaves the wait
// to polling.
func TestServiceWaitPollsWithoutAWatch(t *testing.T) {
	cs := fake.NewClientset(readySlice("tmp-a", "10.244.0.5", "10.244.1.5"))
	cs.PrependWatchReactor("endpointslices", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, errors.New("forbidden")
	})
	env := &probes.Env{Kube: cs}
	svc, _, err := service(context.Background(), env, quiet{}, Service{Namespace: "ns", Name: "tmp", PortName: "http", Temporary: true}, twoPods)
	if err != nil || len(svc.Backends) != 2 {
		t.Fatalf("backends %+v, err %v", svc.Backends, err)
	}
	if got := verbs(cs); got["list"] < 1 {
		t.Errorf("endpointslices requests %v, want a list after the refused watch", got)
	}
}

// goneAgents says pod b was deleted, as the run's watch of its pods would.
type goneAgents struct{ probetest.Agents }

func (goneAgents) Lost(a probes.Agent) error {
	if a.Pod == "b" {
		return &probes.AgentLostError{Kind: a.Kind, Node: a.Node, Pod: a.Pod, Reason: probes.LostPodDeleted, Err: errors.New("deleted")}
	}
	return nil
}

// An agent deleted while its endpoint is waited for ends the wait with the
// agent's loss (a runner.agent-lost finding), not a timeout of the wait;
// without a loss, a wait that runs out of time goes on with the endpoints
// there are.
func TestServiceWaitEndsWithALostAgent(t *testing.T) {
	defer func(d time.Duration) { endpointsTimeout = d }(endpointsTimeout)
	endpointsTimeout = time.Second
	for _, c := range []struct {
		name   string
		agents probes.Agents
		lost   bool
	}{{"b deleted", goneAgents{}, true}, {"time runs out", probetest.Agents{}, false}} {
		t.Run(c.name, func(t *testing.T) {
			cs := fake.NewClientset()
			env := &probes.Env{Kube: cs, Agents: c.agents}
			go func() {
				for verbs(cs)["watch"] == 0 {
					time.Sleep(5 * time.Millisecond)
				}
				_, _ = cs.DiscoveryV1().EndpointSlices("ns").Create(context.Background(), readySlice("tmp-a", "10.244.0.5"), metav1.CreateOptions{})
			}()
			start := time.Now()
			svc, _, err := service(context.Background(), env, quiet{}, Service{Namespace: "ns", Name: "tmp", PortName: "http", Temporary: true}, twoPods)
			var lost *probes.AgentLostError
			switch {
			case c.lost && (!errors.As(err, &lost) || time.Since(start) > endpointsTimeout/2):
				t.Errorf("after %s: err %v, want the agent's loss at once", time.Since(start), err)
			case !c.lost && (err != nil || len(svc.Backends) != 1):
				t.Errorf("err %v, backends %+v; want the one endpoint there is", err, svc.Backends)
			}
		})
	}
}
