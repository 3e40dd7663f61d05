package policy

import (
	"fmt"
	"net/netip"
)

// Endpoint is one end of a question: a pod (Pod >= 0, an index into
// Engine.Pods) or, for a source outside the pod network, an IP (Pod < 0).
type Endpoint struct {
	Pod int
	IP  netip.Addr
}

// PodEndpoint returns the endpoint for the pod "namespace/name".
func (e *Engine) PodEndpoint(key string) (Endpoint, bool) {
	i, ok := e.podIndex[key]
	return Endpoint{Pod: i}, ok
}

// IPEndpoint returns the endpoint of ip: the pod that owns it when there is one.
func (e *Engine) IPEndpoint(ip netip.Addr) Endpoint {
	for i := range e.Pods {
		if e.Pods[i].HostNetwork {
			continue
		}
		for _, a := range e.Pods[i].IPs {
			if a == ip {
				return Endpoint{Pod: i}
			}
		}
	}
	return Endpoint{Pod: -1, IP: ip}
}

func (e *Engine) endpointName(ep Endpoint) string {
	if ep.Pod >= 0 {
		return e.Pods[ep.Pod].Key()
	}
	return ep.IP.String()
}

// RuleRef names one rule of one policy, and the peer in it that matched
// (-1: the rule has no peers and so admits every source or destination).
type RuleRef struct {
	Policy string
	Rule   int
	Peer   int
}

func (r RuleRef) String() string {
	if r.Peer < 0 {
		return fmt.Sprintf("%s rule %d (any peer)", r.Policy, r.Rule)
	}
	return fmt.Sprintf("%s rule %d peer %d", r.Policy, r.Rule, r.Peer)
}

// Direction is the verdict of one side: ingress at the destination or egress
// at the source.
type Direction struct {
	// Isolated: at least one policy selects the pod for this direction.
	Isolated bool
	// Exempt says why policies cannot apply here ("" when they can): the pod
	// is hostNetwork, or the endpoint is not a pod.
	Exempt string
	// Policies select the pod for this direction, as "namespace/name".
	Policies []string
	// Admitted are the rules that admit the traffic.
	Admitted []RuleRef
}

// Allowed reports whether this direction lets the traffic through.
func (d Direction) Allowed() bool { return !d.Isolated || len(d.Admitted) > 0 }

// Verdict answers one question with its evidence.
type Verdict struct {
	From, To string
	Port     Port
	Egress   Direction // at the source
	Ingress  Direction // at the destination
}

// Allowed reports whether both directions let the traffic through.
func (v Verdict) Allowed() bool { return v.Egress.Allowed() && v.Ingress.Allowed() }

// Check answers "can from reach to on port?"; to must be a pod.
func (e *Engine) Check(from, to Endpoint, port Port) Verdict {
	v := Verdict{From: e.endpointName(from), To: e.endpointName(to), Port: port}
	switch {
	case from.Pod < 0:
		v.Egress.Exempt = "the source is not a pod, so no NetworkPolicy governs its egress"
	case e.Pods[from.Pod].HostNetwork:
		v.Egress.Exempt = "the source uses the host network; NetworkPolicies do not apply to hostNetwork pods"
	default:
		v.Egress = e.direction(e.out[from.Pod], false, to.Pod, from, to, port)
	}
	switch {
	case to.Pod < 0:
		v.Ingress.Exempt = "the destination is no pod of the cluster, so no NetworkPolicy governs its ingress"
	case e.Pods[to.Pod].HostNetwork:
		v.Ingress.Exempt = "the destination uses the host network; NetworkPolicies do not apply to hostNetwork pods"
	default:
		v.Ingress = e.direction(e.in[to.Pod], true, to.Pod, from, to, port)
	}
	return v
}

// direction walks the policies that isolate the target and collects the
// rules that admit peer; dst resolves named ports.
func (e *Engine) direction(policies []int32, ingress bool, dst int, src, to Endpoint, port Port) Direction {
	d := Direction{Isolated: len(policies) > 0}
	for _, pi := range policies {
		c := &e.policies[pi]
		d.Policies = append(d.Policies, c.name())
		rules := c.outRules
		if ingress {
			rules = c.inRules
		}
		for ri := range rules {
			r := &rules[ri]
			if !e.portMatches(r.ports, dst, port) {
				continue
			}
			if r.allPeers {
				d.Admitted = append(d.Admitted, RuleRef{c.name(), ri, -1})
				continue
			}
			for pj := range r.peers {
				if e.peerMatches(&r.peers[pj], src, to, ingress) {
					d.Admitted = append(d.Admitted, RuleRef{c.name(), ri, pj})
				}
			}
		}
	}
	return d
}

// peerMatches: for ingress the peer is the source; for egress it is the
// destination: a pod, or an address outside the pods (an ipBlock matches it).
func (e *Engine) peerMatches(p *compiledPeer, src, to Endpoint, ingress bool) bool {
	if !ingress {
		if to.Pod < 0 {
			return p.block != nil && p.block.contains(to.IP)
		}
		return p.pods.has(to.Pod)
	}
	if src.Pod >= 0 {
		return p.pods.has(src.Pod)
	}
	return p.block != nil && p.block.contains(src.IP)
}

// portMatches reports whether a rule's ports admit port on pod dst; named
// ports are looked up on dst.
func (e *Engine) portMatches(ps []portSpec, dst int, q Port) bool {
	if len(ps) == 0 {
		return true
	}
	for i := range ps {
		s := &ps[i]
		switch {
		case s.proto != q.Protocol:
		case s.anyPort:
			return true
		case s.name != "":
			if b := e.named[namedKey{s.name, q}]; b != nil && dst >= 0 && b.has(dst) {
				return true
			}
		case q.Port >= s.start && q.Port <= s.end:
			return true
		}
	}
	return false
}
