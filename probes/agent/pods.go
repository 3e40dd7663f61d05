package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/netsleuth/netsleuth/probes"
)

// Labels every object netsleuth creates carries.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "netsleuth"
	LabelRunID     = "netsleuth.dev/run-id"
	LabelKind      = "netsleuth.dev/agent"
	// Selector selects everything netsleuth created, in any run.
	Selector = LabelManagedBy + "=" + ManagedBy
)

const containerName = "agent"

// Binary is where the agent image has the netsleuth binary: ko, which builds
// the image (.goreleaser.yaml's kos, and the lab through hack/agentimage),
// puts a Go program's binary in /ko-app. An image for --agent-image must
// have it there too.
const Binary = "/ko-app/netsleuth"

// PingGroupRange is the safe sysctl that lets the agent's user send ICMP
// echo requests through an unprivileged socket.
const PingGroupRange = "0 2147483647"

// labels returns the labels of an object of this run.
func labels(runID string, kind probes.AgentKind) map[string]string {
	l := map[string]string{LabelManagedBy: ManagedBy, LabelRunID: runID}
	if kind != "" {
		l[LabelKind] = string(kind)
	}
	return l
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// podName is a DNS-label pod name for run runID's agent of kind on node,
// unique per node and per run: runs sharing an --agent-namespace never
// share, reuse or delete each other's pods.
func podName(runID string, kind probes.AgentKind, node string) string {
	n := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(node), "-"), "-")
	name, suffix := "netsleuth-"+string(kind)+"-"+n, "-"+runID
	if len(name)+len(suffix) > 63 || n != strings.ToLower(node) {
		sum := sha256.Sum256([]byte(node))
		h := "-" + hex.EncodeToString(sum[:])[:10]
		name = strings.TrimRight(name[:min(len(name), 63-len(suffix)-len(h))], "-") + h
	}
	return name + suffix
}

func agentEnv() []corev1.EnvVar {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	return []corev1.EnvVar{field("POD_NAME", "metadata.name"), field("NODE_NAME", "spec.nodeName")}
}

func resources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
	}
}

// PodSpec returns the agent pod of kind for node. Pod-network agents meet the
// PodSecurity "restricted" profile; node agents are privileged, on the host
// network, with the host's root mounted read-only at /host.
func (m *Manager) podFor(kind probes.AgentKind, node string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName(m.cfg.RunID, kind, node), Namespace: m.ns, Labels: labels(m.cfg.RunID, kind)},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: containerName, Image: m.cfg.Image, ImagePullPolicy: m.cfg.PullPolicy,
				Command:   []string{Binary, "agent", "serve"},
				Env:       agentEnv(),
				Resources: resources(),
			}},
		},
	}
	if kind == probes.AgentNode {
		nodeAgent(pod)
		return pod
	}
	c := &pod.Spec.Containers[0]
	c.Ports = []corev1.ContainerPort{
		{Name: "echo-tcp", ContainerPort: EchoPort, Protocol: corev1.ProtocolTCP},
		{Name: "echo-udp", ContainerPort: EchoPort, Protocol: corev1.ProtocolUDP},
		{Name: "http", ContainerPort: HTTPPort, Protocol: corev1.ProtocolTCP},
	}
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](65534),
		RunAsGroup:     ptr.To[int64](65534),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		Sysctls:        []corev1.Sysctl{{Name: "net.ipv4.ping_group_range", Value: PingGroupRange}},
	}
	c.SecurityContext = &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	return pod
}

// nodeAgent turns pod into a node agent.
func nodeAgent(pod *corev1.Pod) {
	pod.Spec.HostNetwork = true
	pod.Spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	pod.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{
		HostPath: &corev1.HostPathVolumeSource{Path: "/", Type: ptr.To(corev1.HostPathDirectory)}}}}
	c := &pod.Spec.Containers[0]
	c.Command = append(c.Command, "--listen=false")
	c.Env = append(c.Env, corev1.EnvVar{Name: HostRootEnv, Value: "/host"})
	c.VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/host", ReadOnly: true}}
	c.SecurityContext = &corev1.SecurityContext{
		Privileged:   ptr.To(true),
		RunAsUser:    ptr.To[int64](0),
		RunAsNonRoot: ptr.To(false),
	}
}
