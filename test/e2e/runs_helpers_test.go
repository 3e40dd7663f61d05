//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/netsleuth/netsleuth/model"
)

const runIDLabel = "netsleuth.dev/run-id"

// runProc is one `netsleuth check -o json` in the background, with a run
// ID the test chose (the hidden --run-id) so it can follow the run's objects.
type runProc struct {
	id          string
	cmd         *exec.Cmd
	out, errOut bytes.Buffer
	started     time.Time
	done        chan struct{}
	err         error
}

// startCheck starts the default suite (with the lab's agent image) as run
// id against kubeconfig kc; extra flags follow.
func startCheck(t *testing.T, kc, id string, extra ...string) *runProc {
	t.Helper()
	p, err := launch(t, kc, id, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launch is startCheck for any goroutine: it returns the error.
func launch(t *testing.T, kc, id string, extra ...string) (*runProc, error) {
	args := append([]string{"check", "-o", "json", "--kubeconfig", kc, "--run-id", id}, agentFlags...)
	p := &runProc{id: id, cmd: exec.Command(netsleuth, append(args, extra...)...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errOut
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	p.started = time.Now()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p, nil
}

func (p *runProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the run to exit and returns its exit code (-1 when
// it was killed by a signal).
func (p *runProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	code, err := p.waitCode(d)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// waitCode is wait for any goroutine: it returns the error.
func (p *runProc) waitCode(d time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		return 0, fmt.Errorf("run %s did not exit within %s\nstderr: %s", p.id, d, p.errOut.String())
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0, nil
	case errors.As(p.err, &ee):
		return ee.ExitCode(), nil
	}
	return 0, fmt.Errorf("run %s: %w", p.id, p.err)
}

// report is the run's validated JSON report.
func (p *runProc) report(t *testing.T) *model.Report {
	t.Helper()
	var r model.Report
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		t.Fatalf("run %s: report is not JSON: %v\nstderr: %s", p.id, err, p.errOut.String())
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("run %s: report breaks the schema contract: %v", p.id, err)
	}
	return &r
}

// assertCleanRun fails when a finished run saw another run as debris or
// could not delete its own agents.
func assertCleanRun(t *testing.T, p *runProc, r *model.Report) {
	t.Helper()
	for _, f := range r.Findings {
		if strings.HasSuffix(f.ID, ".leftovers") {
			t.Errorf("run %s reported %s: %s", p.id, f.ID, strings.Join(f.Evidence, ", "))
		}
		if f.ID == "runner.cleanup-failed" || strings.HasSuffix(f.ID, ".agent-not-started") {
			t.Errorf("run %s: %s %s: %s", p.id, f.ID, f.Title, strings.Join(f.Evidence, ", "))
		}
	}
	if strings.Contains(p.errOut.String(), "could not delete the agents") {
		t.Errorf("run %s: %s", p.id, p.errOut.String())
	}
}

// runObjects lists what run id has in the cluster (any namespace), as
// kind/ns/name; a namespace being deleted counts until it is gone.
func runObjects(ctx context.Context, id string) ([]string, error) {
	return labelled(ctx, runIDLabel+"="+id)
}

// labelled lists the namespaces, pods, services and Leases matching sel.
func labelled(ctx context.Context, sel string) ([]string, error) {
	o := metav1.ListOptions{LabelSelector: sel}
	var out []string
	nss, err := kube.CoreV1().Namespaces().List(ctx, o)
	if err != nil {
		return nil, err
	}
	// A run deletes its pods and waits for them, then deletes its namespace
	// without waiting: a namespace being deleted, and the Services and
	// Lease in it, are not debris (TestMain waits for every one of them to
	// be gone). Pods count wherever they are.
	deleting := map[string]bool{}
	for _, n := range nss.Items {
		if n.DeletionTimestamp != nil {
			deleting[n.Name] = true
			continue
		}
		out = append(out, "namespace/"+n.Name+" ("+string(n.Status.Phase)+")")
	}
	pods, err := kube.CoreV1().Pods("").List(ctx, o)
	if err != nil {
		return nil, err
	}
	for _, p := range pods.Items {
		out = append(out, "pod/"+p.Namespace+"/"+p.Name)
	}
	svcs, err := kube.CoreV1().Services("").List(ctx, o)
	if err != nil {
		return nil, err
	}
	for _, s := range svcs.Items {
		if deleting[s.Namespace] {
			continue
		}
		out = append(out, "service/"+s.Namespace+"/"+s.Name)
	}
	leases, err := kube.CoordinationV1().Leases("").List(ctx, o)
	if err != nil {
		return nil, err
	}
	for _, l := range leases.Items {
		if deleting[l.Namespace] {
			continue
		}
		out = append(out, "lease/"+l.Namespace+"/"+l.Name)
	}
	return out, nil
}

// waitRunGone waits until run id has nothing left and says how long it took.
func waitRunGone(ctx context.Context, id string) (time.Duration, error) {
	start := time.Now()
	var left []string
	for {
		var err error
		left, err = runObjects(ctx, id)
		if err == nil && len(left) == 0 {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("run %s left %s", id, strings.Join(left, ", "))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// runAlive is until when run id counts as alive for `netsleuth cleanup`:
// its Lease's expiry, or, without a Lease, its newest object's age plus
// the 30 s a starting run gets to create one. Zero when it has nothing.
func runAlive(ctx context.Context, id string) (time.Time, error) {
	o := metav1.ListOptions{LabelSelector: runIDLabel + "=" + id}
	leases, err := kube.CoordinationV1().Leases("").List(ctx, o)
	if err != nil {
		return time.Time{}, err
	}
	var until time.Time
	for _, l := range leases.Items {
		renewed := l.CreationTimestamp.Time
		if l.Spec.RenewTime != nil {
			renewed = l.Spec.RenewTime.Time
		}
		d := 30 * time.Second
		if l.Spec.LeaseDurationSeconds != nil {
			d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
		}
		if e := renewed.Add(d); e.After(until) {
			until = e
		}
	}
	if len(leases.Items) > 0 {
		return until, nil
	}
	nss, err := kube.CoreV1().Namespaces().List(ctx, o)
	if err != nil {
		return time.Time{}, err
	}
	pods, err := kube.CoreV1().Pods("").List(ctx, o)
	if err != nil {
		return time.Time{}, err
	}
	var created []time.Time
	for _, n := range nss.Items {
		created = append(created, n.CreationTimestamp.Time)
	}
	for _, p := range pods.Items {
		created = append(created, p.CreationTimestamp.Time)
	}
	for _, c := range created {
		if e := c.Add(30 * time.Second); e.After(until) {
			until = e
		}
	}
	return until, nil
}

// cleanupAfterDeath waits until the dead run id no longer counts as alive,
// runs `netsleuth cleanup` once and checks it removed all of the run. Any
// goroutine may call it.
func cleanupAfterDeath(t *testing.T, id string) (waited time.Duration, out string) {
	ctx := ctxT(t, 3*time.Minute)
	until, err := runAlive(ctx, id)
	if err != nil {
		t.Errorf("run %s: %v", id, err)
		return 0, ""
	}
	if d := time.Until(until); d > 0 {
		waited = d + time.Second // the Lease's times are whole microseconds; clocks are shared here
		time.Sleep(waited)
	}
	c := exec.CommandContext(ctx, netsleuth, "cleanup", "--kubeconfig", kubeconfig)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	code := 0
	if err := c.Run(); err != nil {
		code = -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
	}
	stdout, stderr := o.String(), e.String()
	if code != 0 {
		t.Errorf("cleanup after run %s: exit %d\n%s%s", id, code, stdout, stderr)
	}
	if left, err := runObjects(ctx, id); err != nil || len(left) > 0 {
		t.Errorf("one cleanup after run %s died left %v %v\ncleanup said: %s", id, left, err, stdout)
	}
	return waited, stdout
}

// apiProxy is a TCP proxy in front of the lab's API server; cut closes it
// and every connection through it, as a network failure would.
type apiProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

// proxiedKubeconfig starts a proxy to the lab's API server and writes a
// kubeconfig that goes through it (TLS still checks the server's name).
// Any goroutine may call it.
func proxiedKubeconfig(t *testing.T) (string, *apiProxy, error) {
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return "", nil, err
	}
	if err := clientcmd.ResolveLocalPaths(cfg); err != nil { // the copy lives elsewhere
		return "", nil, err
	}
	cluster := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	host := strings.TrimPrefix(cluster.Server, "https://")
	name, _, err := net.SplitHostPort(host)
	if err != nil {
		return "", nil, fmt.Errorf("the lab's server %q: %w", cluster.Server, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	p := &apiProxy{ln: ln, target: host}
	go p.serve()
	t.Cleanup(p.close)
	cluster.TLSServerName = name
	cluster.Server = "https://" + ln.Addr().String()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", nil, err
	}
	return path, p, nil
}

func (p *apiProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// close cuts the API connection: no new connection is accepted and every
// open one is closed.
func (p *apiProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return
	}
	p.cut = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// percentile is the p-th percentile (0–100) of ds, nearest rank.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (p*len(s) + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}
