package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	k8slabels "k8s.io/apimachinery/pkg/labels"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// fakeKubelet makes every created pod run, or wait with reason when set.
func fakeKubelet(cs *fake.Clientset, reason string) {
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		st := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		if reason != "" {
			st = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "image not present with pull policy of Never"}}
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.9", ContainerStatuses: []corev1.ContainerStatus{{Name: containerName, State: st}}}
		return false, nil, nil
	})
	// The fake clientset's watch ignores label selectors: filter its events
	// as the API server would (two runs share a namespace in some tests).
	cs.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		wa := a.(k8stesting.WatchActionImpl)
		w, err := cs.Tracker().Watch(corev1.SchemeGroupVersion.WithResource("pods"), wa.GetNamespace(), wa.ListOptions)
		if err != nil {
			return true, nil, err
		}
		sel := wa.GetWatchRestrictions().Labels
		return true, watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
			p, ok := e.Object.(*corev1.Pod)
			return e, !ok || sel == nil || sel.Matches(k8slabels.Set(p.Labels))
		}), nil
	})
	// The fake clientset does not implement DeleteCollection: delete the
	// matching pods one by one, as the API server would.
	cs.PrependReactor("delete-collection", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		dc := a.(k8stesting.DeleteCollectionAction)
		l, err := cs.Tracker().List(corev1.SchemeGroupVersion.WithResource("pods"), corev1.SchemeGroupVersion.WithKind("Pod"), dc.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		sel := dc.GetListRestrictions().Labels
		for _, p := range l.(*corev1.PodList).Items {
			if sel.Matches(k8slabels.Set(p.Labels)) {
				if err := cs.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), p.Namespace, p.Name); err != nil {
					return true, nil, err
				}
			}
		}
		return true, nil, nil
	})
}

func TestStartCreatesRestrictedPodsOncePerNode(t *testing.T) {
	cs := fake.NewClientset()
	fakeKubelet(cs, "")
	m := NewManager(cs, nil, Config{RunID: "r1", Image: "img"})
	ctx := context.Background()
	as := m.Start(ctx, probes.AgentPod, []string{"n1", "n2"})
	again := m.Start(ctx, probes.AgentPod, []string{"n1"})
	for _, a := range append(as, again...) {
		if a.Err != nil || a.IP != "10.244.0.9" || a.Namespace != "netsleuth-r1" {
			t.Fatalf("agent: %+v", a)
		}
	}
	pods, _ := cs.CoreV1().Pods("netsleuth-r1").List(ctx, metav1.ListOptions{LabelSelector: LabelRunID + "=r1"})
	if len(pods.Items) != 2 {
		t.Fatalf("want 2 pods (one per node, reused), got %d", len(pods.Items))
	}
	p := pods.Items[0]
	sc, c := p.Spec.SecurityContext, p.Spec.Containers[0].SecurityContext
	if p.Spec.HostNetwork || !*sc.RunAsNonRoot || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
		*c.AllowPrivilegeEscalation || c.Capabilities.Drop[0] != "ALL" || p.Spec.NodeName == "" {
		t.Errorf("pod agent is not restricted and pinned: %+v", p.Spec)
	}
	ns, _ := cs.CoreV1().Namespaces().Get(ctx, "netsleuth-r1", metav1.GetOptions{})
	if ns.Labels[psEnforce] != "restricted" || ns.Labels[LabelManagedBy] != ManagedBy {
		t.Errorf("namespace labels: %v", ns.Labels)
	}
	// Node agents were not planned: none starts, and the namespace stays
	// restricted.
	if n := m.Start(ctx, probes.AgentNode, []string{"n1"})[0]; n.Err == nil || !strings.Contains(n.Err.Error(), "not planned") {
		t.Errorf("an unplanned node agent: %+v", n)
	}
	ns, _ = cs.CoreV1().Namespaces().Get(ctx, "netsleuth-r1", metav1.GetOptions{})
	if ns.Labels[psEnforce] != "restricted" {
		t.Errorf("namespace relabelled for an unplanned node agent: %v", ns.Labels)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The fake clientset does not cascade: check the namespace itself.
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "netsleuth-r1", metav1.GetOptions{}); err == nil {
		t.Error("the run's namespace is still there after Close")
	}
}

func TestStartReportsImageNeverPullFast(t *testing.T) {
	cs := fake.NewClientset()
	fakeKubelet(cs, "ErrImageNeverPull")
	m := NewManager(cs, nil, Config{RunID: "r2", Image: "img", StartTimeout: 10 * time.Second})
	start := time.Now()
	a := m.Start(context.Background(), probes.AgentPod, []string{"n1"})[0]
	var se *probes.AgentStartError
	if !errors.As(a.Err, &se) || se.Reason != "ErrImageNeverPull" || time.Since(start) > 3*time.Second {
		t.Fatalf("err %v after %s", a.Err, time.Since(start))
	}
	fs := NotStarted("pod-to-pod", a)
	cause, f := fs[0], fs[1]
	if cause.ID != "agent.image-unavailable" || cause.Key == "" || f.CausedBy != cause.Key {
		t.Errorf("cause %+v, symptom %+v", cause, f)
	}
	if f.Status != "error" || !strings.Contains(f.Fixes[0].Commands[0], "--agent-image") {
		t.Errorf("finding: %+v", f)
	}
	// A second node's failure to pull the same image is the same fact.
	b := a
	b.Node, b.Pod = "n2", "netsleuth-pod-n2"
	if other := NotStarted("dns", b)[0]; other.Key != cause.Key {
		t.Errorf("two nodes that cannot pull the image are two causes: %q, %q", cause.Key, other.Key)
	}
}

func TestStartTimesOutWithReason(t *testing.T) {
	cs := fake.NewClientset() // no kubelet: the pod stays Pending
	m := NewManager(cs, nil, Config{RunID: "r3", Image: "img", StartTimeout: 700 * time.Millisecond})
	a := m.Start(context.Background(), probes.AgentPod, []string{"n1"})[0]
	var se *probes.AgentStartError
	if !errors.As(a.Err, &se) || se.Reason != "Timeout" {
		t.Fatalf("err %v", a.Err)
	}
}

func TestCleanupAndLeftovers(t *testing.T) {
	cs := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "netsleuth-old", Labels: map[string]string{LabelManagedBy: ManagedBy, LabelRunID: "old"}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stray", Namespace: "team", Labels: map[string]string{LabelManagedBy: ManagedBy, LabelRunID: "old"}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team"}},
	)
	m := NewManager(cs, nil, Config{RunID: "new", Image: "img"})
	left, err := m.Leftovers(context.Background(), nil)
	if err != nil || len(left) != 2 {
		t.Fatalf("leftovers %v %v", left, err)
	}
	if again, _ := m.Leftovers(context.Background(), nil); len(again) != 0 {
		t.Errorf("leftovers reported twice: %v", again)
	}
	gone, err := Cleanup(context.Background(), cs, false)
	if err != nil || len(gone.Leftovers) != 2 || len(gone.Live) != 0 {
		t.Fatalf("cleanup %+v %v", gone, err)
	}
	if _, err := cs.CoreV1().Pods("team").Get(context.Background(), "app", metav1.GetOptions{}); err != nil {
		t.Errorf("cleanup deleted an unlabelled pod: %v", err)
	}
	if left, _ := Find(context.Background(), cs, ""); len(left.Leftovers) != 0 {
		t.Errorf("left after cleanup: %v", left.Leftovers)
	}
}

func TestPodNameIsADNSLabelWithTheRunID(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range []string{"nsl-node1", "Node_With.Dots.example.com", strings.Repeat("x", 200), strings.Repeat("x", 199)} {
		for _, run := range []string{"1a2b3c4d", "e2e0123456789abc"} {
			name := podName(run, probes.AgentNode, n)
			if len(name) > 63 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || !strings.HasSuffix(name, "-"+run) {
				t.Errorf("podName(%q, %q) = %q", run, n, name)
			}
			if seen[name] {
				t.Errorf("podName(%q, %q) = %q again", run, n, name)
			}
			seen[name] = true
		}
	}
	if got := podName("1a2b3c4d", probes.AgentPod, "nsl-node1"); got != "netsleuth-pod-nsl-node1-1a2b3c4d" {
		t.Errorf("a short node name is kept as it is: %q", got)
	}
}

// A pod already in a namespace the user chose (started by hand, without the
// run's labels) is reused: the run waits for it by name.
func TestStartReusesAPodAlreadyThere(t *testing.T) {
	cs := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "mine"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podName("r5", probes.AgentPod, "n1"), Namespace: "mine"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.7", ContainerStatuses: []corev1.ContainerStatus{
				{Name: containerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}})
	m := NewManager(cs, nil, Config{RunID: "r5", Image: "img", Namespace: "mine", StartTimeout: 5 * time.Second})
	a := m.Start(context.Background(), probes.AgentPod, []string{"n1"})[0]
	if a.Err != nil || a.IP != "10.244.0.7" {
		t.Fatalf("agent: %+v", a)
	}
}

// A run whose probes declare node agents creates its namespace privileged
// before its first pod, whichever agent comes first: PodSecurity admission
// never meets a relabelled namespace, and no pod create is refused or retried.
func TestPlannedNodeAgentsMakeTheNamespacePrivilegedFromTheStart(t *testing.T) {
	cs := fake.NewClientset()
	var creates, patches int
	cs.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		creates++
		return false, nil, nil
	})
	cs.PrependReactor("patch", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) {
		patches++
		return false, nil, nil
	})
	fakeKubelet(cs, "")
	m := NewManager(cs, nil, Config{RunID: "r6", Image: "img", StartTimeout: 5 * time.Second})
	m.Plan([]probes.AgentKind{probes.AgentPod, probes.AgentNode})
	ctx := context.Background()
	if a := m.Start(ctx, probes.AgentPod, []string{"n1"})[0]; a.Err != nil {
		t.Fatal(a.Err)
	}
	ns, _ := cs.CoreV1().Namespaces().Get(ctx, "netsleuth-r6", metav1.GetOptions{})
	if ns.Labels[psEnforce] != "privileged" || ns.Labels[psWarn] != "privileged" {
		t.Errorf("namespace labels before the first node agent: %v", ns.Labels)
	}
	n := m.Start(ctx, probes.AgentNode, []string{"n1"})[0]
	if n.Err != nil {
		t.Fatal(n.Err)
	}
	np, _ := cs.CoreV1().Pods("netsleuth-r6").Get(ctx, n.Pod, metav1.GetOptions{})
	if !np.Spec.HostNetwork || !np.Spec.Containers[0].VolumeMounts[0].ReadOnly {
		t.Errorf("node agent spec: %+v", np.Spec)
	}
	if creates != 2 || patches != 0 {
		t.Errorf("%d pod creates and %d namespace patches, want 2 and 0", creates, patches)
	}
	_ = m.Close(ctx)
}

// TestExecDoesNotSendARequestTheAgentWouldRefuse: a bad request is caught
// before any exec, with the agent's own sentence.
func TestExecDoesNotSendARequestTheAgentWouldRefuse(t *testing.T) {
	cs := fake.NewClientset()
	m := NewManager(cs, &rest.Config{Host: "https://127.0.0.1:1"}, Config{RunID: "r1", Image: "img"})
	_, err := m.Exec(context.Background(), probes.Agent{Node: "n1", Namespace: "ns", Pod: "p"},
		ops.Request{Ops: []ops.Op{{Kind: ops.ReadFiles, Paths: []string{"/etc/shadow"}}}})
	var r *ops.Refusal
	if !errors.As(err, &r) || !strings.Contains(err.Error(), `path "/etc/shadow" is outside the readable set`) {
		t.Fatalf("got %v", err)
	}
	if n := len(cs.Actions()); n != 0 {
		t.Errorf("%d API calls for a refused request", n)
	}
}

// TestNodeFactsRequestIsValid: the agent takes the request every probe
// reading node facts sends.
func TestNodeFactsRequestIsValid(t *testing.T) {
	if err := FactsRequest().Validate(); err != nil {
		t.Fatal(err)
	}
}

// noServiceAccount makes admission refuse the first n pod creations as the
// ServiceAccount plugin does while a new namespace has no default
// ServiceAccount (n < 0: every one).
func noServiceAccount(cs *fake.Clientset, n int) *int {
	refused := new(int)
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if n >= 0 && *refused >= n {
			return false, nil, nil
		}
		*refused++
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), p.Name,
			fmt.Errorf("error looking up service account %s/default: serviceaccount \"default\" not found", a.GetNamespace()))
	})
	return refused
}

// A namespace whose default ServiceAccount comes late (its controller
// catching up after an API server restart) delays the agents; one that
// never gets it is named as such, never as a missing RBAC permission.
func TestStartWaitsForTheDefaultServiceAccount(t *testing.T) {
	defer func(d time.Duration) { saWait = d }(saWait)
	saWait = 2 * time.Second

	cs := fake.NewClientset()
	fakeKubelet(cs, "")
	refused := noServiceAccount(cs, 2)
	m := NewManager(cs, nil, Config{RunID: "sa1", Image: "img", StartTimeout: 10 * time.Second})
	if a := m.Start(context.Background(), probes.AgentPod, []string{"n1"})[0]; a.Err != nil || *refused != 2 {
		t.Fatalf("agent %+v after %d refusals", a, *refused)
	}

	cs = fake.NewClientset()
	fakeKubelet(cs, "")
	noServiceAccount(cs, -1)
	m = NewManager(cs, nil, Config{RunID: "sa2", Image: "img", StartTimeout: 10 * time.Second})
	a := m.Start(context.Background(), probes.AgentPod, []string{"n1"})[0]
	var se *probes.AgentStartError
	if !errors.As(a.Err, &se) || se.Reason != ReasonNoServiceAccount || apierrors.IsForbidden(a.Err) {
		t.Fatalf("err %v", a.Err)
	}
	cause := NotStarted("pod-to-pod", a)[0]
	if cause.ID != "agent.no-service-account" || strings.Contains(cause.RootCause, "bind") || !strings.Contains(cause.RootCause, "not a missing RBAC permission") {
		t.Errorf("cause %+v", cause)
	}
}
