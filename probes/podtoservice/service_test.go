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
)

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
	svc, f, err := service(context.Background(), env, quiet{}, Service{Namespace: "ns", Name: "tmp", PortName: "http", Temporary: true}, 2)
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
	svc, _, err := service(context.Background(), env, quiet{}, Service{Namespace: "ns", Name: "tmp", PortName: "http", Temporary: true}, 2)
	if err != nil || len(svc.Backends) != 2 {
		t.Fatalf("backends %+v, err %v", svc.Backends, err)
	}
	if got := verbs(cs); got["list"] < 1 {
		t.Errorf("endpointslices requests %v, want a list after the refused watch", got)
	}
}
