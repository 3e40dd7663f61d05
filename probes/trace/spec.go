// Package trace is `netsleuth trace FROM TO`: one connection from the
// user's own workload, walked layer by layer (name resolution, the Service
// and its endpoints, egress and ingress policy, the source node, the
// destination, the connection itself), each layer a hop with a verdict and
// its evidence. The first broken hop is named with its root cause and fix;
// hops after it are not reached. Node and Service facts come from the
// shared diagnoses every probe cites, so a hop's cause reads the same as in
// `netsleuth check`.
package trace

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/source"
)

// Source kinds.
const (
	FromPod      = "pod"
	FromWorkload = "workload"
	FromNode     = "node"
)

// Destination kinds.
const (
	ToPod      = "pod"
	ToService  = "service"
	ToAddress  = "address" // an IP or a CIDR sample; may turn out to be a pod or a ClusterIP
	ToName     = "name"    // a DNS name, resolved as the source pod resolves it
	defaultTCP = 80
)

// Spec is a parsed trace question, before the cluster is asked.
type Spec struct {
	FromKind, FromNS, FromName, WorkloadKind string
	ToKind, ToNS, ToName                     string
	ToAddr                                   netip.Addr
	ToNet                                    string // the CIDR given, for an address from a CIDR
	Port                                     int
	Proto                                    string // tcp or udp
	PortDefaulted                            bool
}

var portRE = regexp.MustCompile(`^(.*):([0-9]+)(?:/(tcp|udp|TCP|UDP))?$`)

// Parse reads FROM, TO and --port ("" or P[/proto]). Its errors name the
// argument and give an example.
func Parse(from, to, port string) (Spec, error) {
	var s Spec
	if err := s.parseFrom(from); err != nil {
		return s, err
	}
	target := to
	if m := portRE.FindStringSubmatch(to); m != nil && !strings.Contains(m[1], "::") {
		target = m[1]
		if err := s.setPort(m[2] + "/" + strings.ToLower(m[3])); err != nil {
			return s, fmt.Errorf("TO %q: %w; e.g. shop/svc/api:8080", to, err)
		}
	}
	if port != "" {
		if err := s.setPort(port); err != nil {
			return s, fmt.Errorf("--port %q: %w; e.g. --port 8080/tcp", port, err)
		}
	}
	if err := s.parseTo(target, to); err != nil {
		return s, err
	}
	if s.Port == 0 {
		s.Port, s.Proto, s.PortDefaulted = defaultTCP, "tcp", true
	}
	return s, nil
}

func (s *Spec) setPort(v string) error {
	p, proto, _ := strings.Cut(v, "/")
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not 1-65535", p)
	}
	switch proto = strings.ToLower(proto); proto {
	case "":
		proto = "tcp"
	case "tcp", "udp":
	default:
		return fmt.Errorf("protocol %q is not tcp or udp", proto)
	}
	s.Port, s.Proto = n, proto
	return nil
}

func (s *Spec) parseFrom(from string) error {
	if name, ok := strings.CutPrefix(from, "node/"); ok && name != "" && !strings.ContainsAny(name, "/ :*") {
		s.FromKind, s.FromName = FromNode, name
		return nil
	}
	r, err := source.Parse(from)
	if err != nil {
		return fmt.Errorf("FROM %q is not namespace/pod, namespace/deployment/name or node/NAME; e.g. shop/web-7d9c or shop/deployment/web", from)
	}
	s.FromKind, s.FromNS, s.FromName, s.WorkloadKind = FromPod, r.Namespace, r.Name, r.Kind
	if r.Kind != "" {
		s.FromKind = FromWorkload
	}
	return nil
}

// source is the pod or workload FROM names.
func (s Spec) source() source.Ref {
	return source.Ref{Namespace: s.FromNS, Name: s.FromName, Kind: s.WorkloadKind}
}

// parseTo reads the destination to, which is TO without its port; given is
// TO as the user wrote it, for the error.
func (s *Spec) parseTo(to, given string) error {
	parts := strings.Split(to, "/")
	if pf, err := netip.ParsePrefix(to); err == nil && pf.Addr().Is4() {
		s.ToKind, s.ToAddr, s.ToNet = ToAddress, sample(pf.Masked()), pf.Masked().String()
		return nil
	}
	if a, err := netip.ParseAddr(to); err == nil && a.Is4() {
		s.ToKind, s.ToAddr = ToAddress, a
		return nil
	}
	switch {
	case strings.Contains(to, ":"):
		// No Kubernetes name holds a colon: this is an IPv6 address or CIDR
		// (fd00::/64 is no namespace "fd00::" and pod "64"), or a bad port.
	case len(parts) == 3 && (parts[1] == "svc" || parts[1] == "service") && isName(parts[0], parts[2]):
		s.ToKind, s.ToNS, s.ToName = ToService, parts[0], parts[2]
		return nil
	case len(parts) == 2 && isName(parts[0], parts[1]):
		s.ToKind, s.ToNS, s.ToName = ToPod, parts[0], parts[1]
		return nil
	}
	if k, err := probes.TargetKind(to); err == nil && k == probes.TargetName {
		s.ToKind, s.ToName = ToName, strings.TrimSuffix(to, ".")
		return nil
	}
	return fmt.Errorf("TO %q is not namespace/pod, namespace/svc/name, an IPv4 address or CIDR, or a DNS name (each with an optional :port[/proto]); e.g. shop/svc/api:8080 or 192.168.2.10:443", given)
}

// isName reports whether ns and name can be a namespace and an object in
// it (a DNS label and a DNS subdomain), as FROM's are checked.
func isName(ns, name string) bool {
	return len(validation.IsDNS1123Label(ns)) == 0 && len(validation.IsDNS1123Subdomain(name)) == 0
}

// sample is the address a CIDR destination is tried at: its first host.
func sample(pf netip.Prefix) netip.Addr {
	if pf.Bits() >= 31 {
		return pf.Addr()
	}
	return pf.Addr().Next()
}

// From renders the source as given.
func (s Spec) From() string {
	if s.FromKind == FromNode {
		return "node/" + s.FromName
	}
	return s.source().String()
}

// To renders the destination with its port.
func (s Spec) To() string {
	var d string
	switch s.ToKind {
	case ToService:
		d = s.ToNS + "/svc/" + s.ToName
	case ToPod:
		d = s.ToNS + "/" + s.ToName
	case ToName:
		d = s.ToName
	default:
		d = s.ToAddr.String()
	}
	return fmt.Sprintf("%s:%d/%s", d, s.Port, s.Proto)
}
