package probes

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/kube"
)

// AgentNodes is the run's one choice of the nodes active probes start
// agents on (kube.SampleNodes with --max-nodes, the nodes of the --from and
// --to pods included), made once per run and shared by every probe, so the
// probes reuse each other's agents and the report names one sample.
func (e *Env) AgentNodes(ctx context.Context) (kube.NodeSample, error) {
	o := e.Options
	v, err := e.Snap().Memo(ctx, fmt.Sprintf("agent-nodes/%d/%s/%s", o.MaxNodes, o.From, o.To), func(ctx context.Context) (any, error) {
		all, err := e.Snap().Nodes(ctx)
		if err != nil {
			return nil, err
		}
		return kube.SampleNodes(all, o.MaxNodes, e.flagNodes(ctx)), nil
	})
	if err != nil {
		return kube.NodeSample{}, err
	}
	return v.(kube.NodeSample), nil
}

// flagNodes are the nodes the run's flags name: where the --from and --to
// pods run. A pod that cannot be read names no node (the policy probe
// reports it).
func (e *Env) flagNodes(ctx context.Context) []string {
	var out []string
	for _, ref := range []string{e.Options.From, e.Options.To} {
		ns, name, ok := PodRef(ref)
		if !ok || e.Kube == nil {
			continue
		}
		p, err := e.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && p.Spec.NodeName != "" {
			out = append(out, p.Spec.NodeName)
		}
	}
	return out
}

// PodRef reads "namespace/pod" from a --from or --to value (which may end in
// ":port[/proto]"); an IP, a CIDR or a namespace wildcard is no pod.
func PodRef(v string) (ns, name string, ok bool) {
	if i := strings.LastIndex(v, ":"); i >= 0 {
		v = v[:i]
	}
	ns, name, ok = strings.Cut(v, "/")
	if !ok || ns == "" || name == "" || name == "*" || strings.Contains(name, "/") {
		return "", "", false
	}
	if _, err := netip.ParsePrefix(v); err == nil {
		return "", "", false
	}
	return ns, name, true
}

// Coverage is what a probe that starts agents on the sample records about
// the nodes it leaves out: the run's shared nodes.sampled and
// nodes.not-ready findings, and, citing the latter, its own
// <probe>.nodes-skipped. It says nothing when every node is covered.
func Coverage(probeID string, s kube.NodeSample) []model.Finding {
	var out []model.Finding
	if f, ok := kube.SampledFinding(s); ok {
		out = append(out, f)
	}
	return append(out, Skipped(probeID, "test from", s, kube.Names(s.NotReady))...)
}

// Skipped is what a probe records about nodes that are not Ready and that
// it left out (left, names): the run's nodes.not-ready finding, made from s
// (the sample, or kube.EveryNode), and, citing it, the probe's own
// <probe>.nodes-skipped, "<probe> did not <did> N node(s) that are not
// Ready: …". Nothing when it left none out.
func Skipped(probeID, did string, s kube.NodeSample, left []string) []model.Finding {
	cause, ok := kube.NotReadyFinding(s)
	if !ok || len(left) == 0 {
		return nil
	}
	skipped := model.Finding{
		ID:      probeID + ".nodes-skipped",
		Status:  model.StatusWarn,
		Subject: kube.NodesSubject,
		Title: fmt.Sprintf("%s did not %s %s node(s) that are not Ready: %s",
			probeID, did, kube.Count(len(left)), kube.FirstNames(left)),
		Evidence: []string{"left out: " + strings.Join(left, ", ")},
	}
	return []model.Finding{cause, skipped.Symptom(cause)}
}

// SplitReporting splits nodes into those whose kubelet reports and those
// whose kubelet stopped reporting (kube.Unreachable): a read through the
// API server's node proxy (configz) could only fail or time out there, so
// probes do not try it and record Skipped for them instead.
func SplitReporting(nodes []corev1.Node) (reporting []corev1.Node, silent []string) {
	for _, n := range nodes {
		if kube.Unreachable(n) {
			silent = append(silent, n.Name)
		} else {
			reporting = append(reporting, n)
		}
	}
	return reporting, silent
}

// RecordCoverage records Coverage(probeID, s) through rec.
func RecordCoverage(rec Recorder, probeID string, s kube.NodeSample) {
	for _, f := range Coverage(probeID, s) {
		rec.Finding(f)
	}
}
