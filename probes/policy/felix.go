package policy

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/agent"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/nodenet"
)

// On a Calico cluster, felix on the sender's and the destination's nodes
// decides what live traffic proves: a felix that stopped programming keeps
// its old rules (new pods are cut off, policy changes do not apply), and a
// felix that is gone with its rules enforces nothing. The policy probe
// reads both nodes before it trusts the traffic.

// felixOn reads felix's rules and health on nodes through node agents,
// and on the sender's node whether felix has programmed the sender's
// interface (a new stand-in pod takes felix a moment). Agents that do not
// start give their findings instead of a state.
func felixOn(ctx context.Context, env *probes.Env, rec probes.Recorder, c *kube.Calico, nodes []string, sender probes.Agent) ([]nodenet.Felix, []model.Finding, error) {
	started, failed, err := agent.StartNodes(ctx, env, rec, "read felix's rules and health before trusting live traffic", nodes)
	if err != nil {
		return nil, nil, err
	}
	var notStarted []model.Finding
	for _, a := range failed {
		notStarted = append(notStarted, agent.NotStarted("policy", a)...)
	}
	rec.Stage("reading felix's rules and health port on " + strings.Join(nodes, ", "))
	out, _ := probes.FanOut(ctx, len(started), 0, func(ctx context.Context, i int) (nodenet.Felix, error) {
		a := started[i]
		port := c.FelixHealthPort(a.Node)
		for try := 0; ; try++ {
			f, n := readFelix(ctx, env, a, port)
			if a.Node != sender.Node || f.State != nodenet.FelixReady {
				return f, nil
			}
			ip, _ := netip.ParseAddr(sender.IP)
			iface, known := nodenet.FelixKnows(n, ip)
			if known {
				return f, nil
			}
			if try == len(programWait) {
				f.State = nodenet.FelixStale
				f.Detail = fmt.Sprintf("ready, yet after %s it has not programmed %s, the interface of %s (%s)", programWait.total(), iface, sender.Ref(), sender.IP)
				f.Evidence = append(f.Evidence, fmt.Sprintf("node agent on %s: iptables-save → no rule of cali-from-wl-dispatch matches -i %s", a.Node, iface))
				return f, nil
			}
			select {
			case <-ctx.Done():
				return f, nil
			case <-time.After(programWait[try]):
			}
		}
	})
	return out, notStarted, nil
}

// programWait are the pauses while felix has not yet programmed a new
// sender's interface.
var programWait = waits{time.Second, time.Second, 2 * time.Second}

type waits []time.Duration

func (w waits) total() time.Duration {
	var t time.Duration
	for _, d := range w {
		t += d
	}
	return t
}

// readFelix reads felix's rules and health port through node agent a.
func readFelix(ctx context.Context, env *probes.Env, a probes.Agent, port int) (nodenet.Felix, nodenet.Node) {
	req := agent.FactsRequest()
	req.Ops = append(req.Ops, nodenet.FelixHealthOp(port))
	resp, err := env.Agents.Exec(ctx, a, req)
	if err != nil {
		resp = ops.Response{}
	}
	return felixFrom(a.Node, port, resp)
}

// felixFrom judges felix from a node agent's answer to FactsRequest plus
// FelixHealthOp.
func felixFrom(node string, port int, resp ops.Response) (nodenet.Felix, nodenet.Node) {
	n := len(agent.FactsRequest().Ops)
	if len(resp.Results) != n+1 {
		return nodenet.Felix{Node: node, State: nodenet.FelixUnknown, Detail: "unknown",
			Evidence: []string{fmt.Sprintf("node agent on %s: no answer about felix's rules and health port %d", node, port)}}, nodenet.Node{Name: node}
	}
	facts := resp
	facts.Results = resp.Results[:n]
	nd := nodenet.Node{Name: node, Facts: agent.FactsFrom(node, facts)}
	return nodenet.FelixOn(nd, port, resp.Results[n]), nd
}

// staleFelix are the node findings for every felix that keeps rules but
// does not program them.
func staleFelix(fs []nodenet.Felix) []model.Finding {
	var out []model.Finding
	for _, f := range fs {
		if f.State == nodenet.FelixStale {
			out = append(out, nodenet.FelixNotProgramming(f))
		}
	}
	return out
}

// notVerifiedStale is the verdict's evidence when felix is stale: live
// traffic would show old rules, or a new pod cut off, not the policies.
func notVerifiedStale(causes []model.Finding) string {
	var nodes []string
	for _, c := range causes {
		nodes = append(nodes, c.Subject.Name)
	}
	return fmt.Sprintf("not verified live: felix on %s is not programming (see %s), so traffic now would show its old rules, or a new pod it never set up, not these policies",
		strings.Join(nodes, ", "), nodenet.IDFelixNotProgramming)
}

// notVerifiedNoAgent is the verdict's evidence when the node agents that
// read felix did not start: felix's state is unknown, so live traffic
// proves nothing about the policies.
func notVerifiedNoAgent(notStarted []model.Finding) string {
	var nodes []string
	for _, f := range notStarted { // causes may name a namespace, or nothing; the symptoms name the node
		if f.Subject != nil && f.Subject.Kind == "Node" && !slices.Contains(nodes, f.Subject.Name) {
			nodes = append(nodes, f.Subject.Name)
		}
	}
	return fmt.Sprintf("not verified live: the node agent on %s did not start (see %s), so felix's state there is unknown and traffic now would not show whether it enforces these policies",
		strings.Join(nodes, ", "), notStarted[0].ID)
}

// withFelix completes a policy.not-enforced finding with what felix showed
// on the nodes: gone with its rules (nothing enforces policy there), or
// ready (enforcing, yet this traffic passed).
func withFelix(f *model.Finding, fs []nodenet.Felix) {
	if len(fs) == 0 {
		return
	}
	var absent, ready []string
	for _, x := range fs {
		f.Evidence = append(f.Evidence, x.Evidence...)
		switch x.State {
		case nodenet.FelixAbsent:
			absent = append(absent, x.Node)
		case nodenet.FelixReady:
			ready = append(ready, x.Node)
		}
	}
	recheck := f.Fixes[len(f.Fixes)-1].Commands
	if len(absent) > 0 {
		f.RootCause = fmt.Sprintf("The NetworkPolicies deny %s, yet the traffic got through: the cluster's CNI is Calico, and on node %s felix, its policy agent, is not running and none of its rules are in place, "+
			"so nothing enforces NetworkPolicy there (no enforcer at all, unlike a felix that stopped programming but keeps its rules).", verdictText(f), strings.Join(absent, ", "))
		f.Fixes = nil
		for _, n := range absent {
			f.Fixes = append(f.Fixes, nodenet.FelixFixes(n)[0])
		}
		f.Fixes = append(f.Fixes, model.Fix{Description: "Then ask again: the contradiction should be gone.", Commands: recheck[len(recheck)-1:]})
	}
	if len(ready) > 0 {
		f.RootCause += fmt.Sprintf(" Felix reports ready on %s: if it enforces there, the policy may not select what netsleuth judged (a Calico policy with higher precedence allows it, or felix has not caught up yet).",
			strings.Join(ready, ", "))
	}
}

// verdictText is "A -> B on P" from a not-enforced finding's title.
func verdictText(f *model.Finding) string {
	s := strings.TrimPrefix(f.Title, "NetworkPolicy is not enforced: ")
	s, _, _ = strings.Cut(s, " got through")
	return s
}

// felixNodes are the distinct nodes of the sender and the destination.
func felixNodes(a, b string) []string {
	out := []string{a}
	if b != "" && !slices.Contains(out, b) {
		out = append(out, b)
	}
	return out
}
