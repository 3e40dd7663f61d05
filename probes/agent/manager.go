package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// Config configures a run's agents.
type Config struct {
	RunID      string
	Image      string
	PullPolicy corev1.PullPolicy
	// Namespace is a namespace the user chose (--agent-namespace); empty
	// means a namespace of the run's own, netsleuth-<runid>, created on
	// first use and deleted by Close.
	Namespace string
	// StartTimeout bounds how long an agent may take to run; zero means
	// DefaultStartTimeout. The caller's context may end it sooner.
	StartTimeout time.Duration
}

// DefaultStartTimeout is how long an agent pod may take to start.
const DefaultStartTimeout = 45 * time.Second

// PodSecurity labels.
const (
	psEnforce = "pod-security.kubernetes.io/enforce"
	psWarn    = "pod-security.kubernetes.io/warn"
)

// Manager creates the agents of one run and runs operations in them. It
// implements probes.Agents.
type Manager struct {
	kube  kubernetes.Interface
	rest  *rest.Config
	cfg   Config
	ns    string
	ownNS bool

	mu         sync.Mutex
	nsCreated  bool // own namespace exists
	touched    bool // something may have been created
	privileged bool // own namespace allows privileged pods
	agents     map[string]*entry
	leftovers  sync.Once
}

// entry is one agent being started or started; done closes when a is final.
type entry struct {
	done chan struct{}
	a    probes.Agent
}

var _ probes.Agents = (*Manager)(nil)

// NewManager returns a manager; it creates nothing until an agent is needed.
func NewManager(kube kubernetes.Interface, cfg *rest.Config, c Config) *Manager {
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.PullPolicy == "" {
		c.PullPolicy = corev1.PullIfNotPresent
	}
	m := &Manager{kube: kube, rest: cfg, cfg: c, ns: c.Namespace, agents: map[string]*entry{}}
	if m.ns == "" {
		m.ns, m.ownNS = "netsleuth-"+c.RunID, true
	}
	return m
}

// Namespace is where the agents live.
func (m *Manager) Namespace() string { return m.ns }

// Start makes sure an agent of kind runs on every node, concurrently.
func (m *Manager) Start(ctx context.Context, kind probes.AgentKind, nodes []string) []probes.Agent {
	out := make([]probes.Agent, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { out[i] = m.start(ctx, kind, n) })
	}
	wg.Wait()
	return out
}

// start returns the agent of kind on node, starting it once per run; callers
// asking for the same agent wait for the first one.
func (m *Manager) start(ctx context.Context, kind probes.AgentKind, node string) probes.Agent {
	key := string(kind) + "/" + node
	m.mu.Lock()
	e, ok := m.agents[key]
	if !ok {
		e = &entry{done: make(chan struct{})}
		m.agents[key] = e
	}
	m.mu.Unlock()
	if ok {
		select {
		case <-e.done:
			return e.a
		case <-ctx.Done():
			return probes.Agent{Kind: kind, Node: node, Namespace: m.ns, Err: context.Cause(ctx)}
		}
	}
	e.a = m.create(ctx, kind, node)
	if e.a.Err != nil && ctx.Err() != nil {
		// Cut short by this caller: let a later caller try again.
		m.mu.Lock()
		delete(m.agents, key)
		m.mu.Unlock()
	}
	close(e.done)
	return e.a
}

// create creates the agent pod and waits until it runs.
func (m *Manager) create(ctx context.Context, kind probes.AgentKind, node string) probes.Agent {
	a := probes.Agent{Kind: kind, Node: node, Namespace: m.ns}
	if err := m.ensureNamespace(ctx, kind == probes.AgentNode); err != nil {
		a.Err = err
		return a
	}
	pod := m.podFor(kind, node)
	a.Pod = pod.Name
	_, err := m.kube.CoreV1().Pods(m.ns).Create(ctx, pod, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		// A retry after a cancelled attempt: reuse the pod.
	case err != nil && apierrors.IsForbidden(err) && strings.Contains(err.Error(), "PodSecurity"):
		a.Err = &probes.AgentStartError{Kind: kind, Node: node, Pod: pod.Name, Reason: "PodSecurity", Detail: err.Error()}
		return a
	case err != nil:
		a.Err = fmt.Errorf("creating agent pod %s/%s: %w", m.ns, pod.Name, err)
		return a
	}
	a.IP, a.Err = m.waitRunning(ctx, kind, node, pod.Name)
	return a
}

// ensureNamespace creates the run's namespace once; privileged relaxes its
// PodSecurity level for node agents.
func (m *Manager) ensureNamespace(ctx context.Context, privileged bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.touched = true
	if !m.ownNS || (m.nsCreated && (m.privileged || !privileged)) {
		return nil
	}
	level := "restricted"
	if privileged {
		level = "privileged"
	}
	if !m.nsCreated {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: m.ns, Labels: labels(m.cfg.RunID, "")}}
		ns.Labels[psEnforce], ns.Labels[psWarn] = level, level
		if _, err := m.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating the agent namespace %s: %w", m.ns, err)
		}
		m.nsCreated, m.privileged = true, privileged
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"privileged",%q:"privileged"}}}`, psEnforce, psWarn)
	if _, err := m.kube.CoreV1().Namespaces().Patch(ctx, m.ns, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("allowing privileged node agents in namespace %s: %w", m.ns, err)
	}
	m.privileged = true
	return nil
}

// Exec runs req in agent a through the API server (pods/exec) and decodes
// the JSON answer.
func (m *Manager) Exec(ctx context.Context, a probes.Agent, req ops.Request) (ops.Response, error) {
	var resp ops.Response
	if a.Err != nil || a.Pod == "" {
		return resp, fmt.Errorf("agent on node %s is not running", a.Node)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	r := m.kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(a.Namespace).Name(a.Pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: m.containerFor(a), Command: []string{"/netsleuth", "agent", "exec"},
			Stdin: true, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(m.rest, "POST", r.URL())
	if err != nil {
		return resp, fmt.Errorf("exec into %s/%s: %w", a.Namespace, a.Pod, err)
	}
	var stdout, stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: bytes.NewReader(body), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return resp, fmt.Errorf("exec into %s/%s: %w (stderr: %s)", a.Namespace, a.Pod, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return resp, fmt.Errorf("agent %s/%s answered no JSON (%w): %q", a.Namespace, a.Pod, err, truncate(stdout.String()+stderr.String(), 200))
	}
	if len(resp.Results) != len(req.Ops) {
		return resp, fmt.Errorf("agent %s/%s answered %d results for %d ops", a.Namespace, a.Pod, len(resp.Results), len(req.Ops))
	}
	return resp, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Leftovers lists objects of earlier runs, once per run.
func (m *Manager) Leftovers(ctx context.Context) ([]string, error) {
	var out []string
	var err error
	m.leftovers.Do(func() { out, err = Find(ctx, m.kube, m.cfg.RunID) })
	return out, err
}

// Close deletes everything the run created: its namespace (waiting until it
// is gone, within ctx), or the run's pods and services in a chosen namespace.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	touched := m.touched
	m.mu.Unlock()
	if !touched {
		return nil
	}
	sel := metav1.ListOptions{LabelSelector: LabelRunID + "=" + m.cfg.RunID}
	zero := metav1.DeleteOptions{GracePeriodSeconds: new(int64)}
	errPods := m.kube.CoreV1().Pods(m.ns).DeleteCollection(ctx, zero, sel)
	if !m.ownNS {
		return errors.Join(ignoreNotFound(errPods), deleteServices(ctx, m.kube, m.ns, sel))
	}
	if err := m.kube.CoreV1().Namespaces().Delete(ctx, m.ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the agent namespace %s: %w", m.ns, err)
	}
	return waitGone(ctx, m.kube, m.ns)
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
