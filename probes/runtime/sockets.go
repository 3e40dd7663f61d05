package runtime

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/netsleuth/netsleuth/assets"
)

// SocketMount is one container's hostPath mount that reaches a runtime socket.
type SocketMount struct {
	Namespace string
	Pod       string
	Node      string
	Container string
	Volume    string
	MountPath string // where the container sees it
	// HostPath is the host path the container sees (volume path joined with subPath).
	HostPath string
	// Sockets are the runtime sockets at or below HostPath.
	Sockets []assets.Socket
	// DirectRuntime is the runtime whose socket (or socket directory) the
	// HostPath is itself; empty when HostPath is a parent directory that
	// merely contains sockets.
	DirectRuntime string
}

// canon applies the directory aliases (/var/run → /run) to a cleaned path.
func canon(p string, aliases map[string]string) string {
	p = path.Clean("/" + p)
	for from, to := range aliases {
		if p == from || strings.HasPrefix(p, from+"/") {
			return to + strings.TrimPrefix(p, from)
		}
	}
	return p
}

// under reports whether p is dir or inside it.
func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// SocketMounts returns every container mount in pod that exposes a runtime
// socket from the catalogue: the hostPath is the socket, a socket directory,
// something inside a socket directory, or a parent directory of a socket.
func SocketMounts(pod *corev1.Pod, cat assets.RuntimeSockets) []SocketMount {
	hostPaths := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	if len(hostPaths) == 0 {
		return nil
	}
	var out []SocketMount
	for _, c := range allContainers(pod) {
		for _, vm := range c.VolumeMounts {
			hp, ok := hostPaths[vm.Name]
			if !ok {
				continue
			}
			eff := canon(path.Join(hp, vm.SubPath), cat.Aliases)
			m := SocketMount{Namespace: pod.Namespace, Pod: pod.Name, Node: pod.Spec.NodeName,
				Container: c.Name, Volume: vm.Name, MountPath: vm.MountPath, HostPath: path.Join(hp, vm.SubPath)}
			for _, s := range cat.Sockets {
				sp := canon(s.Path, cat.Aliases)
				switch {
				case eff == sp || s.Directory && under(eff, sp):
					m.DirectRuntime = s.Runtime
				case under(sp, eff):
				default:
					continue
				}
				if !hasSocket(m.Sockets, sp, cat.Aliases) {
					m.Sockets = append(m.Sockets, s)
				}
			}
			if len(m.Sockets) > 0 {
				out = append(out, m)
			}
		}
	}
	return out
}

func hasSocket(list []assets.Socket, canonPath string, aliases map[string]string) bool {
	for _, s := range list {
		if canon(s.Path, aliases) == canonPath {
			return true
		}
	}
	return false
}

func allContainers(pod *corev1.Pod) []corev1.Container {
	cs := append([]corev1.Container{}, pod.Spec.InitContainers...)
	cs = append(cs, pod.Spec.Containers...)
	for _, e := range pod.Spec.EphemeralContainers {
		cs = append(cs, corev1.Container(e.EphemeralContainerCommon))
	}
	return cs
}

// runtimes returns the distinct runtimes of the sockets, in catalogue order.
func runtimes(socks []assets.Socket) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range socks {
		if !seen[s.Runtime] {
			seen[s.Runtime] = true
			out = append(out, s.Runtime)
		}
	}
	return out
}
