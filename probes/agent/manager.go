package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
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

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	k8s "github.com/netsleuth/netsleuth/probes/kube"
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
	// LeaseRenew is how often the run's Lease is renewed; zero means
	// LeaseRenew (tests shorten it).
	LeaseRenew time.Duration
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
	lease      *leaseKeeper
	nodeAgents bool // Plan named node agents: the own namespace is privileged
	agents     map[string]*entry
	standIns   map[string]bool // namespaces this run put stand-ins in
	watches    map[string]*podWatch
	execs      map[string]*execQueue // by agent pod and container
	leftovers  sync.Once
	// send is execOnce; tests replace it.
	send func(ctx context.Context, a probes.Agent, req ops.Request, each func(int, ops.Result)) (ops.Response, error)
}

// entry is one agent being started or started; done closes when a is final.
type entry struct {
	done chan struct{}
	a    probes.Agent
}

var (
	_ probes.Agents  = (*Manager)(nil)
	_ probes.Planner = (*Manager)(nil)
)

// NewManager returns a manager; it creates nothing until an agent is needed.
func NewManager(kube kubernetes.Interface, cfg *rest.Config, c Config) *Manager {
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.LeaseRenew <= 0 {
		c.LeaseRenew = LeaseRenew
	}
	if c.PullPolicy == "" {
		c.PullPolicy = corev1.PullIfNotPresent
	}
	m := &Manager{kube: kube, rest: cfg, cfg: c, ns: c.Namespace, agents: map[string]*entry{}, standIns: map[string]bool{},
		execs: map[string]*execQueue{}}
	m.send = m.execOnce
	if m.ns == "" {
		m.ns, m.ownNS = "netsleuth-"+c.RunID, true
	}
	return m
}

// rbacManager is every call the Manager makes for pod and node agents: the
// run's namespace (created, deleted), its Lease
// (created, renewed, deleted), its pods (created, watched until running,
// their events read, deleted), exec into them (and into the CNI's own
// pods), the temporary Services deleted with the namespace, and an agent's
// pod and node read when an exec into it fails mid-run.
var rbacManager = model.MergePermissions(rbacLease, []model.Permission{
	{Resource: "namespaces", Verbs: []string{"create", "delete"}},
	{Resource: "pods", Verbs: []string{"create", "deletecollection", "get", "list", "watch"}},
	{Resource: "pods", Subresource: "exec", Verbs: []string{"create"}},
	{Resource: "events", Verbs: []string{"list"}},
	{Resource: "services", Verbs: []string{"delete", "list"}},
	{Resource: "nodes", Verbs: []string{"get"}},
	{Resource: "nodes", Subresource: "proxy", Verbs: []string{"get"}}, // the kubelet's /healthz when an exec fails
})

// Namespace is where the agents live.
func (m *Manager) Namespace() string { return m.ns }

// Prepare creates the run's own namespace and Lease (or, in a namespace the
// user chose, the Lease) now rather than with the first agent.
func (m *Manager) Prepare(ctx context.Context) error { return m.ensureNamespace(ctx) }

// Plan declares every kind of agent the run may start, before its first:
// with node agents among them the run's own namespace is created
// privileged, else restricted. A node agent not planned does not start in
// the run's own namespace.
func (m *Manager) Plan(kinds []probes.AgentKind) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodeAgents = m.nodeAgents || slices.Contains(kinds, probes.AgentNode)
}

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
	if err := m.ensureNamespace(ctx); err != nil {
		a.Err = err
		return a
	}
	pod := m.podFor(kind, node)
	a.Pod = pod.Name
	if kind == probes.AgentNode && m.ownNS && !m.planned(kind) {
		a.Err = fmt.Errorf("node agents were not planned for this run, so its namespace %s is restricted (a probe that starts them must declare them in its Info().Agents)", m.ns)
		return a
	}
	err := m.createPod(ctx, pod)
	switch {
	case apierrors.IsAlreadyExists(err):
		// A retry after a cancelled attempt: reuse the pod.
	case isPodSecurityRefusal(err):
		a.Err = &probes.AgentStartError{Kind: kind, Node: node, Pod: pod.Name, Reason: "PodSecurity", Detail: err.Error()}
		return a
	case isNoServiceAccount(err):
		a.Err = &probes.AgentStartError{Kind: kind, Node: node, Pod: pod.Name, Reason: ReasonNoServiceAccount,
			Detail: fmt.Sprintf("the default ServiceAccount of namespace %s did not appear within %s: %v", m.ns, saWait, err)}
		return a
	case err != nil:
		a.Err = fmt.Errorf("creating agent pod %s/%s: %w", m.ns, pod.Name, err)
		return a
	}
	a.IP, a.Err = m.waitState(ctx, a, err == nil, podState)
	return a
}

// planned reports whether Plan named kind.
func (m *Manager) planned(kind probes.AgentKind) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return kind != probes.AgentNode || m.nodeAgents
}

// saWait bounds the wait for the default ServiceAccount of the namespace
// agents start in: the ServiceAccount controller (kube-controller-manager)
// makes it moments after the namespace, or once it has caught up with an
// API server that restarted.
var saWait = 30 * time.Second

// ReasonNoServiceAccount: an agent pod was refused because its namespace
// has no default ServiceAccount.
const ReasonNoServiceAccount = "NoServiceAccount"

// createPod creates pod, trying again while admission refuses it because
// the namespace's default ServiceAccount does not exist yet, for up to
// saWait.
func (m *Manager) createPod(ctx context.Context, pod *corev1.Pod) error {
	give := time.Now().Add(saWait)
	for {
		_, err := m.kube.CoreV1().Pods(m.ns).Create(ctx, pod, metav1.CreateOptions{})
		if !isNoServiceAccount(err) || time.Now().After(give) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// isNoServiceAccount: the ServiceAccount admission plugin found no default
// ServiceAccount in the pod's namespace. A missing ServiceAccount, not a
// missing permission.
func isNoServiceAccount(err error) bool {
	return err != nil && apierrors.IsForbidden(err) && strings.Contains(err.Error(), "error looking up service account")
}

func isPodSecurityRefusal(err error) bool {
	return err != nil && apierrors.IsForbidden(err) && strings.Contains(err.Error(), "PodSecurity")
}

// ensureNamespace readies the run's namespace before its first object: its
// own namespace created once, at the PodSecurity level Plan asked for, then
// the run's Lease in it, renewed until Close. In a namespace the user chose
// the Lease is the run's first object.
func (m *Manager) ensureNamespace(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ownNS && !m.nsCreated {
		if err := m.createNamespace(ctx); err != nil {
			return err
		}
	}
	if m.lease != nil {
		return nil
	}
	k, err := startLease(ctx, m.kube, m.ns, m.cfg.RunID, m.cfg.LeaseRenew)
	if err != nil {
		// A denied create made nothing (in a namespace the user chose,
		// nothing came before it).
		m.touched = m.touched || !apierrors.IsForbidden(err)
		return err
	}
	m.lease, m.touched = k, true
	return nil
}

// createNamespace creates the run's own namespace: privileged when Plan
// named node agents, else restricted. The level is right from the first
// pod on (PodSecurity admission reads a new namespace straight from the
// API server when its cache lacks it). Call with m.mu held.
func (m *Manager) createNamespace(ctx context.Context) error {
	m.touched = true
	level := "restricted"
	if m.nodeAgents {
		level = "privileged"
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: m.ns, Labels: labels(m.cfg.RunID, "")}}
	ns.Labels[psEnforce], ns.Labels[psWarn] = level, level
	if _, err := m.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		// A denied create made nothing: Close has nothing to delete (and
		// no right to try).
		m.touched = !apierrors.IsForbidden(err)
		return fmt.Errorf("creating the agent namespace %s: %w", m.ns, err)
	}
	m.nsCreated = true
	return nil
}

// Stream runs `netsleuth agent <verb>` in agent a through the API server
// (pods/exec), with stdin, stdout and stderr streamed both ways, until the
// command exits or ctx ends. Closing stdin's writer ends a capture early.
func (m *Manager) Stream(ctx context.Context, a probes.Agent, verb string, stdin io.Reader, stdout, stderr io.Writer) error {
	if a.Err != nil || a.Pod == "" {
		return fmt.Errorf("agent on node %s is not running", a.Node)
	}
	r := m.kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(a.Namespace).Name(a.Pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: m.containerFor(a), Command: []string{Binary, "agent", verb},
			Stdin: true, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(m.rest, "POST", r.URL())
	if err != nil {
		return fmt.Errorf("exec into %s/%s: %w", a.Namespace, a.Pod, err)
	}
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr}); err != nil {
		return m.lost(ctx, a, fmt.Errorf("exec into %s/%s: %w", a.Namespace, a.Pod, err))
	}
	return nil
}

// ExecPod runs argv in a container of any pod (the user's) and returns its
// stdout.
func (m *Manager) ExecPod(ctx context.Context, ns, pod, container string, argv []string) (string, error) {
	r := m.kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: argv, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(m.rest, "POST", r.URL())
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return "", fmt.Errorf("%w (%s)", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Exec runs req in agent a through the API server (pods/exec) and decodes
// the JSON answer. A request the agent would refuse is not sent; one it
// refuses anyway (an agent of another version) is an error wrapping the
// agent's *ops.Refusal. Requests to one agent made while an exec into it is
// under way share the next exec (execQueue).
func (m *Manager) Exec(ctx context.Context, a probes.Agent, req ops.Request) (ops.Response, error) {
	var resp ops.Response
	if a.Err != nil || a.Pod == "" {
		return resp, fmt.Errorf("agent on node %s is not running", a.Node)
	}
	if err := req.Validate(); err != nil {
		return resp, fmt.Errorf("a request agent %s/%s would refuse: %w", a.Namespace, a.Pod, err)
	}
	return m.queue(a).exec(ctx, a, req)
}

// execOnce is one exec into a: req sent, its answer decoded. With each,
// the agent reports every op's result as it finishes (ops.Progress) and
// each is called with it then, before execOnce returns.
func (m *Manager) execOnce(ctx context.Context, a probes.Agent, req ops.Request, each func(int, ops.Result)) (ops.Response, error) {
	var resp ops.Response
	req.Progress = each != nil
	body, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	r := m.kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(a.Namespace).Name(a.Pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: m.containerFor(a), Command: []string{Binary, "agent", "exec"},
			Stdin: true, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(m.rest, "POST", r.URL())
	if err != nil {
		return resp, fmt.Errorf("exec into %s/%s: %w", a.Namespace, a.Pod, err)
	}
	stdout := &progressWriter{each: each, ops: len(req.Ops)}
	var stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: bytes.NewReader(body), Stdout: stdout, Stderr: &stderr})
	stdout.end()
	if json.Unmarshal(stdout.rest.Bytes(), &resp) == nil && resp.Error != "" {
		return resp, fmt.Errorf("agent %s/%s refused the request: %w", a.Namespace, a.Pod, &ops.Refusal{Reason: resp.Error})
	}
	if err != nil {
		// The agent did not answer: ask the cluster why (the API server, the
		// pod, its node and kubelet, or the stream), so the probe's error
		// says what happened instead of how the stream ended.
		return resp, m.lost(ctx, a, fmt.Errorf("exec into %s/%s: %w (stderr: %s)", a.Namespace, a.Pod, err, strings.TrimSpace(stderr.String())))
	}
	if err := json.Unmarshal(stdout.rest.Bytes(), &resp); err != nil {
		return resp, fmt.Errorf("agent %s/%s answered no JSON (%w): %q", a.Namespace, a.Pod, err, truncate(stdout.rest.String()+stderr.String(), 200))
	}
	if len(resp.Results) != len(req.Ops) {
		return resp, fmt.Errorf("agent %s/%s answered %d results for %d ops", a.Namespace, a.Pod, len(resp.Results), len(req.Ops))
	}
	return resp, nil
}

// progressWriter is an agent's stdout: each ops.Progress line of an op of
// the request goes to each as it arrives; the rest (the Response) is kept.
type progressWriter struct {
	each func(int, ops.Result)
	ops  int
	line []byte
	rest bytes.Buffer
}

var progressPrefix = []byte(`{"op":`)

func (w *progressWriter) Write(p []byte) (int, error) {
	n := len(p)
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.line = append(w.line, p...)
			return n, nil
		}
		w.line = append(w.line, p[:i+1]...)
		w.flush()
		p = p[i+1:]
	}
}

func (w *progressWriter) flush() {
	var pr ops.Progress
	if w.each != nil && bytes.HasPrefix(w.line, progressPrefix) && json.Unmarshal(w.line, &pr) == nil && pr.Op >= 0 && pr.Op < w.ops {
		w.each(pr.Op, pr.Result)
	} else {
		w.rest.Write(w.line)
	}
	w.line = w.line[:0]
}

// end keeps a last line without its newline.
func (w *progressWriter) end() {
	w.rest.Write(w.line)
	w.line = nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Leftovers lists objects of runs that are over (not those of runs alive
// now, as their Leases say), once per run; snap is the run's read of the
// cluster, whose lists serve when other probes read them (FindIn).
func (m *Manager) Leftovers(ctx context.Context, snap *k8s.Snapshot) ([]string, error) {
	var out []string
	var err error
	m.leftovers.Do(func() {
		var s Survey
		s, err = FindIn(ctx, m.kube, m.cfg.RunID, snap)
		out = s.Leftovers
	})
	return out, err
}

// Close deletes everything the run created and stops its watches. The
// stand-ins it put in users' namespaces go first (the probes of a run share
// them, so they live as long as the run). The run's pods (only its own:
// selected by its run ID) are deleted with no grace period and Close waits
// (within ctx) until the API server has none left; the run's own namespace is then deleted without waiting for the
// namespace controller to finish: nothing runs in it any more, and Find does
// not count a terminating namespace as debris. A namespace the user chose
// is never deleted: the run's services go instead. The run's Lease goes
// last, whatever failed before it: from then on anything the run could not
// delete is a leftover for `netsleuth cleanup`.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	touched := m.touched
	m.mu.Unlock()
	defer m.stopWatches()
	if !touched {
		return nil
	}
	err := probes.WhileUnreachable(ctx, func() error { return m.deleteStandIns(ctx) })
	sel := metav1.ListOptions{LabelSelector: LabelRunID + "=" + m.cfg.RunID}
	zero := metav1.DeleteOptions{GracePeriodSeconds: new(int64)}
	if e := probes.WhileUnreachable(ctx, func() error {
		return ignoreNotFound(m.kube.CoreV1().Pods(m.ns).DeleteCollection(ctx, zero, sel))
	}); e != nil {
		err = errors.Join(err, fmt.Errorf("deleting the agent pods in %s: %w", m.ns, e))
	} else if w := m.watch(m.ns, sel); w.until(ctx, w.empty) != nil {
		err = errors.Join(err, fmt.Errorf("agent pods in %s are still there: %w", m.ns, context.Cause(ctx)))
	}
	if !m.ownNS {
		err = errors.Join(err, probes.WhileUnreachable(ctx, func() error { return deleteServices(ctx, m.kube, m.ns, sel) }))
	} else if e := probes.WhileUnreachable(ctx, func() error {
		return ignoreNotFound(m.kube.CoreV1().Namespaces().Delete(ctx, m.ns, metav1.DeleteOptions{}))
	}); e != nil {
		err = errors.Join(err, fmt.Errorf("deleting the agent namespace %s: %w", m.ns, e))
	}
	return errors.Join(err, probes.WhileUnreachable(ctx, func() error { return m.stopLease(ctx) }))
}

// stopLease ends the run's Lease: its renewals stop and it is deleted, also
// when its create was cut short (the server may have made it anyway).
func (m *Manager) stopLease(ctx context.Context) error {
	m.mu.Lock()
	k := m.lease
	m.lease = nil
	m.mu.Unlock()
	if k == nil {
		k = &leaseKeeper{kube: m.kube, ns: m.ns, name: LeaseName(m.cfg.RunID)}
	}
	return k.stop(ctx)
}

func (m *Manager) stopWatches() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, w := range m.watches {
		w.stop()
		delete(m.watches, k)
	}
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
