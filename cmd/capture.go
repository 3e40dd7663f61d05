package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/capture"
	"github.com/netsleuth/netsleuth/ui"
	"github.com/netsleuth/netsleuth/ui/components/flowtable"
)

// CaptureOptions are the flags of `netsleuth capture`.
type CaptureOptions struct {
	genericiooptions.IOStreams
	ConfigFlags *genericclioptions.ConfigFlags
	Agent       AgentOptions

	Pod, Peer, Iface string
	Filter           string
	Duration         time.Duration
	Count            int
	MaxBytes         int64
	Write, Read      string
	Output           string

	name     string
	ns, pod  string
	peer     netip.AddrPort // zero port: any
	peerSet  bool
	filter   capture.FilterSpec // from --filter
	terminal bool
}

func newCaptureCommand(app App, cf *genericclioptions.ConfigFlags) *cobra.Command {
	o := &CaptureOptions{IOStreams: app.Streams, ConfigFlags: cf, name: app.displayName(), Iface: "pod",
		Duration: 10 * time.Second, Count: 10_000, MaxBytes: 64 << 20, Output: "text"}
	c := &cobra.Command{
		Use:   "capture",
		Short: "Capture a pod's traffic on its node (pod veth, bridge or uplink), classify every flow, save a pcap",
		Long: "capture runs a privileged node agent on the pod's node (announced first, deleted afterwards), captures the\n" +
			"pod's packets there with a kernel filter (no libpcap, no tcpdump on the node), and prints the flow table:\n" +
			"packets and bytes each way, TCP flags, retransmissions, DNS questions and answers, and what each flow shows\n" +
			"(SYN with no reply, refused, ICMP unreachable, DNS with no answer, source not translated...). It is bounded by\n" +
			"--duration, --count and --max-bytes. --read analyses a pcap or pcapng file instead.",
		Example: fmt.Sprintf("  %[1]s capture --pod shop/web --peer 192.168.2.10:80 --duration 15s -w web.pcap\n"+
			"  %[1]s capture --pod shop/web --filter 'udp and port 53' --count 20\n"+
			"  %[1]s capture --pod shop/web --iface uplink -o json\n  %[1]s capture --read web.pcap", o.name),
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := o.Validate(c); err != nil {
				return err
			}
			if o.Read != "" {
				return o.runRead()
			}
			return o.Run(c.Context())
		},
	}
	fs := c.Flags()
	fs.StringVar(&o.Pod, "pod", "", "the pod whose traffic to capture: `namespace/name` (or name with -n)")
	fs.StringVar(&o.Peer, "peer", "", "only traffic with this `IP[:port]` (and ICMP about it)")
	fs.StringVar(&o.Filter, "filter", "", "only the pod's traffic that this tcpdump-style `expression` admits: host ADDR, port N, tcp, udp, icmp, icmp6, "+
		"alternatives of one kind joined by or, kinds by and, e.g. \"udp and (port 53 or port 5353)\" (ICMP about it always passes)")
	fs.StringVar(&o.Iface, "iface", o.Iface, "where on the node: pod (the pod's veth), bridge (the interface its route uses), uplink (the node address's), or an interface `name`")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long to capture (at most 1h)")
	fs.IntVar(&o.Count, "count", o.Count, "stop after this many packets")
	fs.Int64Var(&o.MaxBytes, "max-bytes", o.MaxBytes, "stop after this many bytes of pcap")
	fs.StringVarP(&o.Write, "write", "w", "", "save the pcap to this `file` (opens in Wireshark and tshark)")
	fs.StringVar(&o.Read, "read", "", "analyse this pcap or pcapng `file` instead of capturing")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "output `format`: text or json")
	o.Agent.AddFlags(fs)
	return c
}

// Validate checks the flags before anything is created.
func (o *CaptureOptions) Validate(c *cobra.Command) error {
	if o.Output != "text" && o.Output != "json" {
		return usageErrorf("-o must be text or json (got %q)", o.Output)
	}
	if o.Read != "" {
		if o.Pod != "" {
			return usageErrorf("--read analyses a file; it takes no --pod")
		}
		return nil
	}
	if o.Pod == "" {
		return usageErrorf("capture needs --pod namespace/name (or --read file.pcap)")
	}
	o.ns, o.pod = "default", o.Pod
	if c.Flags().Changed("namespace") && o.ConfigFlags.Namespace != nil {
		o.ns = *o.ConfigFlags.Namespace
	}
	if ns, name, ok := strings.Cut(o.Pod, "/"); ok {
		o.ns, o.pod = ns, name
	}
	if o.ns == "" || o.pod == "" || strings.Contains(o.pod, "/") {
		return usageErrorf("--pod %q: want namespace/name, e.g. --pod shop/web", o.Pod)
	}
	if err := o.parsePeer(); err != nil {
		return err
	}
	if o.Filter != "" {
		f, err := capture.ParseFilter(o.Filter)
		if err != nil {
			return usageErrorf("--filter %q: %v; e.g. --filter 'tcp and (port 80 or port 443)'", o.Filter, err)
		}
		o.filter = f
	}
	// The pod's address is not known yet: a stand-in checks that --peer and
	// --filter make a filter, before anything is created.
	if _, err := o.spec(&corev1.Pod{Status: corev1.PodStatus{PodIP: "192.0.2.1"}}).Assemble(); err != nil {
		return usageErrorf("--peer %q and --filter %q make no capture filter: %v", o.Peer, o.Filter, err)
	}
	switch {
	case o.Duration <= 0 || o.Duration > capture.MaxDuration:
		return usageErrorf("--duration must be above 0 and at most %s (got %s)", capture.MaxDuration, o.Duration)
	case o.Count <= 0 || o.Count > agent.MaxCapturePackets:
		return usageErrorf("--count must be at least 1 and at most %d (got %d)", agent.MaxCapturePackets, o.Count)
	case o.MaxBytes < 1024 || o.MaxBytes > agent.MaxCaptureBytes:
		return usageErrorf("--max-bytes must be at least 1024 and at most %d (got %d)", int64(agent.MaxCaptureBytes), o.MaxBytes)
	case !agent.ValidIfaceName(o.Iface):
		return usageErrorf("--iface %q: want pod, bridge, uplink or an interface name (1 to 15 bytes, no \"/\", \":\" or spaces), e.g. --iface eth0", o.Iface)
	}
	o.terminal = isTerminal(o.Out) && o.Output == "text"
	return o.Agent.validate()
}

func (o *CaptureOptions) parsePeer() error {
	if o.Peer == "" {
		return nil
	}
	o.peerSet = true
	if ap, err := netip.ParseAddrPort(o.Peer); err == nil {
		o.peer = ap
		return nil
	}
	if a, err := netip.ParseAddr(o.Peer); err == nil {
		o.peer = netip.AddrPortFrom(a, 0)
		return nil
	}
	if h, p, err := net.SplitHostPort(o.Peer); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return usageErrorf("--peer %q has port %q; a port is 1-65535", o.Peer, p)
		}
		return usageErrorf("--peer %q: %q is not an IP address; pass e.g. --peer 192.168.2.10:80", o.Peer, h)
	}
	return usageErrorf("--peer %q is not an IP or IP:port; pass e.g. --peer 192.168.2.10:80", o.Peer)
}

// runRead analyses a pcap file: a file that cannot be read is a usage error.
func (o *CaptureOptions) runRead() error {
	t, err := capture.AnalyzeFile(o.Read, capture.ReadOptions{})
	if err != nil {
		return usageErrorf("%v; pass a pcap or pcapng file (tcpdump -w, tshark -w, netsleuth capture -w)", err)
	}
	return o.report(captureReport{Source: o.Read, Table: t})
}

// Run captures the pod's traffic on its node.
func (o *CaptureOptions) Run(ctx context.Context) error {
	cfg, _, err := connect(ctx, o.ConfigFlags)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return usageErrorf("cannot build a Kubernetes client: %v", err)
	}
	pod, err := kube.CoreV1().Pods(o.ns).Get(ctx, o.pod, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return usageErrorf("pod %s/%s not found; pass --pod namespace/name of a running pod (kubectl get pods -A)", o.ns, o.pod)
	case err != nil:
		return &exitError{code: ExitFailing, msg: oneLine(fmt.Sprintf("cannot read pod %s/%s: %v", o.ns, o.pod, err)), err: err}
	case pod.Spec.NodeName == "" || pod.Status.PodIP == "" || pod.Status.Phase != corev1.PodRunning:
		return usageErrorf("pod %s/%s is %s and has no node or IP yet; capture a running pod", o.ns, o.pod, pod.Status.Phase)
	}
	m := o.Agent.manager(kube, cfg, o.Agent.runID())
	m.Plan([]probes.AgentKind{probes.AgentNode})
	defer func() {
		cctx, cancel := contextWithTimeout(60 * time.Second)
		defer cancel()
		if err := m.Close(cctx); err != nil {
			fmt.Fprintf(o.ErrOut, "%s: could not delete the capture agent (%v); run `%s cleanup`\n", o.name, oneLine(err.Error()), o.name)
		}
	}()
	return o.capture(ctx, m, pod)
}

func (o *CaptureOptions) capture(ctx context.Context, m *agent.Manager, pod *corev1.Pod) error {
	node := pod.Spec.NodeName
	fmt.Fprintf(o.ErrOut, "%s: creating a privileged node agent (hostNetwork) on node %s in namespace %s to capture pod %s/%s's traffic\n",
		o.name, node, m.Namespace(), pod.Namespace, pod.Name)
	a := m.Start(ctx, probes.AgentNode, []string{node})[0]
	if a.Err != nil {
		return &exitError{code: ExitFailing, msg: oneLine(fmt.Sprintf("the capture agent on node %s did not start: %v", node, a.Err)), err: a.Err}
	}
	req, where, err := o.request(ctx, m, pod)
	if err != nil {
		return err
	}
	var pcap syncBuffer
	var out io.Writer = &pcap
	if o.Write != "" {
		f, err := os.Create(o.Write)
		if err != nil {
			return usageErrorf("cannot create -w %s (%v); pass a path in a writable directory", o.Write, err)
		}
		defer f.Close()
		out = io.MultiWriter(&pcap, f)
	}
	pr, pw := io.Pipe()
	go func() { _, _ = fmt.Fprintf(pw, "%s\n", mustJSON(req)) }()
	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	stop, shown := make(chan struct{}), make(chan struct{})
	if o.terminal {
		go func() {
			defer close(shown)
			o.live(ctx, &pcap, fmt.Sprintf("node %s, %s", node, where), node+"/"+where, clusterContext(pod), stop, stopStream)
		}()
	} else {
		close(shown)
	}
	var errb bytes.Buffer
	err = m.Stream(streamCtx, a, "capture", pr, out, &errb)
	close(stop)
	<-shown // the live table has given the terminal back
	done := parseDone(errb.String())
	if done.Error != "" {
		return o.captureError(done.Error)
	}
	if err != nil && streamCtx.Err() == nil {
		return &exitError{code: ExitFailing, msg: oneLine(fmt.Sprintf("the capture on node %s failed: %v", node, err)), err: err}
	}
	t, rerr := capture.Analyze(bytes.NewReader(pcap.Bytes()), "the capture", capture.ReadOptions{Iface: done.Iface})
	if rerr != nil && t == nil {
		return &exitError{code: ExitFailing, msg: oneLine(rerr.Error()), err: rerr}
	}
	return o.report(captureReport{Source: fmt.Sprintf("node %s, %s %s", node, where, done.Iface), Node: node, Iface: done.Iface,
		Stats: &done.Stats, Table: t, Pcap: o.Write, Context: clusterContext(pod)})
}

// captureError words an agent's refusal: a missing interface or a bad
// filter is the user's input.
func (o *CaptureOptions) captureError(msg string) error {
	if strings.Contains(msg, "no network interface") || strings.Contains(msg, "no interface") || strings.Contains(msg, "filter") || strings.Contains(msg, "no route") {
		return usageErrorf("%s; check --iface and --peer", strings.TrimSuffix(msg, "."))
	}
	return &exitError{code: ExitFailing, msg: oneLine("the capture failed: " + msg)}
}

// request is where and what the node agent captures.
func (o *CaptureOptions) request(ctx context.Context, m *agent.Manager, pod *corev1.Pod) (agent.CaptureRequest, string, error) {
	spec := o.spec(pod)
	if _, err := spec.Assemble(); err != nil {
		return agent.CaptureRequest{}, "", usageErrorf("the capture filter for --pod, --peer and --filter: %v", err)
	}
	req := agent.CaptureRequest{Filter: spec, MaxPackets: o.Count, MaxBytes: o.MaxBytes, DurationMs: int(o.Duration / time.Millisecond)}
	switch o.Iface {
	case "pod":
		out, err := m.ExecPod(ctx, pod.Namespace, pod.Name, pod.Spec.Containers[0].Name, []string{"cat", "/sys/class/net/eth0/iflink"})
		if idx, perr := strconv.Atoi(strings.TrimSpace(out)); err == nil && perr == nil && idx > 0 {
			req.IfIndex = idx
			return req, "pod veth", nil
		}
		why := "its image may have no cat"
		if err == nil {
			why = fmt.Sprintf("it read %q", strings.TrimSpace(out))
		}
		fmt.Fprintf(o.ErrOut, "%s: could not read pod %s/%s's eth0 iflink through exec (%s); capturing on the interface its route uses instead\n", o.name, pod.Namespace, pod.Name, why)
		fallthrough
	case "bridge":
		req.RouteTo = pod.Status.PodIP
		return req, "bridge", nil
	case "uplink":
		req.Carrying = pod.Status.HostIP
		if o.peerSet {
			req.Carrying, req.RouteTo = "", o.peer.Addr().String()
		}
		return req, "uplink", nil
	}
	req.Iface = o.Iface
	return req, "interface", nil
}

// spec is the kernel filter: the pod's traffic, with --peer and the hosts
// of --filter only that with them, on their ports and protocols. On the
// uplink the pod's traffic to a peer leaves masqueraded, with an address of
// the node: there every packet with the peers is admitted.
func (o *CaptureOptions) spec(pod *corev1.Pod) capture.FilterSpec {
	spec := capture.FilterSpec{Peers: o.filter.Hosts, Ports: o.filter.Ports, Protocols: o.filter.Protocols}
	if a, err := netip.ParseAddr(pod.Status.PodIP); err == nil {
		spec.Hosts = []netip.Addr{a}
	}
	if o.peerSet {
		spec.Peers = append(spec.Peers, o.peer.Addr())
		if o.peer.Port() != 0 {
			spec.Ports = append(spec.Ports, o.peer.Port())
		}
	}
	if o.Iface == "uplink" && len(spec.Peers) > 0 {
		spec.Hosts = nil // the peers are the hosts
	}
	return spec
}

func clusterContext(pod *corev1.Pod) capture.Context {
	var ctx capture.Context
	if a, err := netip.ParseAddr(pod.Status.PodIP); err == nil {
		ctx.PodCIDRs = []netip.Prefix{netip.PrefixFrom(a, 16).Masked()}
		ctx.ClusterCIDRs = ctx.PodCIDRs
	}
	return ctx
}

// parseDone finds the agent's CaptureDone line, the last JSON line of its
// stderr (the agent may print its error after it).
func parseDone(stderr string) agent.CaptureDone {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var d agent.CaptureDone
		if strings.HasPrefix(lines[i], "{") && jsonUnmarshal(lines[i], &d) == nil {
			return d
		}
	}
	return agent.CaptureDone{Error: strings.TrimSpace(stderr)}
}

// syncBuffer is a bytes.Buffer safe for one writer and snapshot readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Bytes is a copy of what was written so far.
func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// live shows the capture's flows as a live table (the TUI's flow table,
// read again every second) until stop closes; q in it calls stopCapture.
func (o *CaptureOptions) live(ctx context.Context, pcap *syncBuffer, title, iface string, cctx capture.Context, stop <-chan struct{}, stopCapture func()) {
	err := ui.RunLiveCapture(ctx, ui.LiveCapture{Title: title, Done: stop, Stop: stopCapture, In: o.In, Out: o.Out,
		Rows: func() []flowtable.Row {
			t, _ := capture.Analyze(bytes.NewReader(pcap.Bytes()), "the capture", capture.ReadOptions{Iface: iface})
			if t == nil {
				return nil
			}
			return flowtable.RowsFromTable(t, cctx, o.Write)
		}})
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(o.ErrOut, "%s: the live flow table failed (%s); the capture goes on\n", o.name, oneLine(err.Error()))
	}
}
