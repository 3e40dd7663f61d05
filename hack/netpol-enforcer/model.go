package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Mark bits used to carry "allowed" verdicts from a pod's policy chain back to
// the dispatch chain. kube-proxy uses 0x4000 (masquerade) and 0x8000 (drop);
// these sit well above them.
const (
	egressMark  = 0x100000
	ingressMark = 0x200000
	markMask    = egressMark | ingressMark

	// jumpComment marks our single jump from FORWARD.
	jumpComment = "netsleuth-lab-netpol"
	// maxPrefixLen keeps <prefix>-B-<12 hex> within iptables' 28-byte limit.
	maxPrefixLen = 13
)

// Pod is the slice of a pod the renderer needs.
type Pod struct {
	Namespace   string
	Name        string
	Labels      map[string]string
	IP          string // IPv4 pod IP; empty when not yet assigned
	Node        string
	HostNetwork bool
	Ports       []ContainerPort
}

// Key is namespace/name.
func (p Pod) Key() string { return p.Namespace + "/" + p.Name }

// ContainerPort is a declared container port, used to resolve named ports.
type ContainerPort struct {
	Name     string
	Port     int32
	Protocol string // TCP, UDP or SCTP
}

// Namespace is a namespace's name and labels.
type Namespace struct {
	Name   string
	Labels map[string]string
}

// Input is everything one render needs. Policies are the plain API structs.
type Input struct {
	Node       string
	Prefix     string
	Pods       []Pod
	Namespaces []Namespace
	Policies   []networkingv1.NetworkPolicy
}

// podFromKube converts a pod object. ok is false for pods that can neither be
// policed nor be peers: terminal pods (their IP may already be reused) and
// pods without an IPv4 address.
func podFromKube(p *corev1.Pod) (Pod, bool) {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return Pod{}, false
	}
	ip := ""
	for _, a := range p.Status.PodIPs {
		if !strings.Contains(a.IP, ":") {
			ip = a.IP
			break
		}
	}
	if ip == "" && p.Status.PodIP != "" && !strings.Contains(p.Status.PodIP, ":") {
		ip = p.Status.PodIP
	}
	if ip == "" {
		return Pod{}, false
	}
	out := Pod{
		Namespace:   p.Namespace,
		Name:        p.Name,
		Labels:      p.Labels,
		IP:          ip,
		Node:        p.Spec.NodeName,
		HostNetwork: p.Spec.HostNetwork,
	}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			proto := string(cp.Protocol)
			if proto == "" {
				proto = string(corev1.ProtocolTCP)
			}
			out.Ports = append(out.Ports, ContainerPort{Name: cp.Name, Port: cp.ContainerPort, Protocol: proto})
		}
	}
	return out, true
}

// chainName builds <prefix>-<kind>-<n hex chars of sha256(key)>.
func chainName(prefix, kind, key string, n int) string {
	sum := sha256.Sum256([]byte(key))
	return fmt.Sprintf("%s-%s-%s", prefix, kind, strings.ToUpper(hex.EncodeToString(sum[:])[:n]))
}

func fwdChain(prefix string) string { return prefix + "-FWD" }

// validatePrefix rejects prefixes that would overflow chain names or break
// the restore format.
func validatePrefix(prefix string) error {
	if prefix == "" || len(prefix) > maxPrefixLen {
		return fmt.Errorf("chain prefix %q must be 1..%d characters", prefix, maxPrefixLen)
	}
	if strings.ContainsAny(prefix, " \t\n\"'!") {
		return fmt.Errorf("chain prefix %q contains whitespace, quotes or '!'", prefix)
	}
	return nil
}
