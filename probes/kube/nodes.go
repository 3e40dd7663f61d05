package kube

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Ready reports whether the node's Ready condition is True.
func Ready(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ReadyNodes splits nodes into the Ready ones, sorted by name, and the names
// of the others, sorted.
func ReadyNodes(nodes []corev1.Node) (ready []corev1.Node, notReady []string) {
	for _, n := range nodes {
		if Ready(n) {
			ready = append(ready, n)
		} else {
			notReady = append(notReady, n.Name)
		}
	}
	slices.SortFunc(ready, func(a, b corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	slices.Sort(notReady)
	return ready, notReady
}

// InternalIP is the node's first InternalIP address, "" when it has none.
func InternalIP(n corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// PodCIDRs are the node's pod CIDRs (spec.podCIDRs, else spec.podCIDR).
func PodCIDRs(n corev1.Node) []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	if n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return nil
}

// Names lists the nodes' names in order.
func Names(nodes []corev1.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}
