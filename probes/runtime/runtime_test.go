package runtime

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/kube"
	"github.com/netsleuth/netsleuth/probes/kube/kubetest"
)

type mount struct{ volume, hostPath, subPath string }

func pod(ns, name, node string, mounts ...mount) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{NodeName: node}}
	c := corev1.Container{Name: "main"}
	for _, m := range mounts {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: m.volume,
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: m.hostPath}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: m.volume, MountPath: "/host", SubPath: m.subPath})
	}
	p.Spec.Containers = []corev1.Container{c}
	return p
}

func TestSocketMounts(t *testing.T) {
	cases := []struct {
		name       string
		mounts     []mount
		wantPaths  []string // sockets found, by catalogue path, for the first mount
		wantDirect string
	}{
		{"docker socket", []mount{{"s", "/var/run/docker.sock", ""}}, []string{"/var/run/docker.sock"}, "docker"},
		{"alias /run", []mount{{"s", "/run/docker.sock", ""}}, []string{"/var/run/docker.sock"}, "docker"},
		{"trailing slash and dots", []mount{{"s", "/var/run/./containerd//containerd.sock", ""}}, []string{"/run/containerd/containerd.sock"}, "containerd"},
		{"crio", []mount{{"s", "/var/run/crio/crio.sock", ""}}, []string{"/var/run/crio/crio.sock"}, "cri-o"},
		{"docker dir", []mount{{"s", "/var/run/docker", ""}}, []string{"/var/run/docker"}, "docker"},
		{"subPath", []mount{{"s", "/var/run", "docker.sock"}}, []string{"/var/run/docker.sock"}, "docker"},
		{"parent /var/run", []mount{{"s", "/var/run", ""}}, []string{"/var/run/docker.sock", "/var/run/docker", "/var/run/cri-dockerd.sock", "/var/run/dockershim.sock", "/run/containerd/containerd.sock", "/run/k3s/containerd/containerd.sock", "/var/run/crio/crio.sock"}, ""},
		{"unrelated hostPath", []mount{{"s", "/var/log", ""}}, nil, ""},
		{"similar prefix", []mount{{"s", "/var/run/docker.sock.bak", ""}}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := SocketMounts(pod("ns", "p", "n1", c.mounts...), catalogue())
			if len(c.wantPaths) == 0 {
				if len(got) != 0 {
					t.Fatalf("want no mounts, got %+v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want 1 mount, got %+v", got)
			}
			var paths []string
			for _, s := range got[0].Sockets {
				paths = append(paths, s.Path)
			}
			if strings.Join(paths, ",") != strings.Join(c.wantPaths, ",") {
				t.Errorf("sockets = %v, want %v", paths, c.wantPaths)
			}
			if got[0].DirectRuntime != c.wantDirect {
				t.Errorf("direct = %q, want %q", got[0].DirectRuntime, c.wantDirect)
			}
		})
	}
}

func TestSocketMountsIgnoresUnmountedVolumes(t *testing.T) {
	p := pod("ns", "p", "n1")
	p.Spec.Volumes = []corev1.Volume{{Name: "sock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run/docker.sock"}}}}
	if got := SocketMounts(p, catalogue()); len(got) != 0 {
		t.Fatalf("a volume no container mounts is no exposure, got %+v", got)
	}
	p.Spec.InitContainers = []corev1.Container{{Name: "init", VolumeMounts: []corev1.VolumeMount{{Name: "sock", MountPath: "/s"}}}}
	if got := SocketMounts(p, catalogue()); len(got) != 1 || got[0].Container != "init" {
		t.Fatalf("init container mount missed: %+v", got)
	}
}

func withMounts(w kube.Workload, p *corev1.Pod) PodMounts {
	return PodMounts{Workload: w, Mounts: SocketMounts(p, catalogue())}
}

func TestAnalyze(t *testing.T) {
	ds := kube.Workload{Kind: "DaemonSet", Namespace: "monitoring", Name: "agent"}
	dep := kube.Workload{Kind: "Deployment", Namespace: "ci", Name: "builder"}
	containerdNodes := []Node{
		{Name: "lab-1", RuntimeVersion: "containerd://1.7.20", KubeletVersion: "v1.36.3"},
		{Name: "lab-2", RuntimeVersion: "containerd://1.7.20", KubeletVersion: "v1.36.3"},
	}
	dockerNodes := []Node{{Name: "old-1", RuntimeVersion: "docker://24.0.7", KubeletVersion: "v1.29.1"}}
	cases := []struct {
		name string
		in   Input
		want map[string]model.Status // finding ID → status, each must appear
		n    int                     // total findings
	}{
		{"healthy containerd", Input{Nodes: containerdNodes},
			map[string]model.Status{IDNode: model.StatusPass, IDNoSocketMounts: model.StatusPass}, 3},
		{"cri-dockerd", Input{Nodes: dockerNodes},
			map[string]model.Status{IDCRIDockerd: model.StatusWarn}, 2},
		{"dockershim", Input{Nodes: []Node{{Name: "old", RuntimeVersion: "docker://19.3.1", KubeletVersion: "v1.16.15"}}},
			map[string]model.Status{IDDockershim: model.StatusWarn}, 2},
		{"unknown runtime", Input{Nodes: []Node{{Name: "x", RuntimeVersion: "frakti://0.1"}, {Name: "y"}}},
			map[string]model.Status{IDUnknown: model.StatusSkip}, 3},
		{"docker socket on containerd nodes", Input{Nodes: containerdNodes, Pods: []PodMounts{
			withMounts(ds, pod("monitoring", "agent-a", "lab-1", mount{"dockersock", "/var/run/docker.sock", ""})),
			withMounts(ds, pod("monitoring", "agent-b", "lab-2", mount{"dockersock", "/var/run/docker.sock", ""})),
		}}, map[string]model.Status{IDDockerSocketMount: model.StatusFail}, 3},
		{"docker socket on docker nodes", Input{Nodes: dockerNodes, Pods: []PodMounts{
			withMounts(dep, pod("ci", "builder-1", "old-1", mount{"dockersock", "/run/docker.sock", ""})),
		}}, map[string]model.Status{IDSocketMount: model.StatusWarn, IDCRIDockerd: model.StatusWarn}, 2},
		{"unscheduled docker socket pod judged against all nodes", Input{Nodes: containerdNodes, Pods: []PodMounts{
			withMounts(dep, pod("ci", "builder-1", "", mount{"dockersock", "/var/run/docker.sock", ""})),
		}}, map[string]model.Status{IDDockerSocketMount: model.StatusFail}, 3},
		{"containerd socket and parent dir", Input{Nodes: containerdNodes, Pods: []PodMounts{
			withMounts(ds, pod("monitoring", "agent-a", "lab-1", mount{"ctr", "/run/containerd/containerd.sock", ""}, mount{"run", "/var/run", ""})),
		}}, map[string]model.Status{IDSocketMount: model.StatusWarn}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Analyze(c.in)
			kubetest.Expect(t, got, c.n, c.want)
		})
	}
}

func TestAnalyzeWording(t *testing.T) {
	ds := kube.Workload{Kind: "DaemonSet", Namespace: "monitoring", Name: "agent"}
	got := Analyze(Input{
		Nodes: []Node{{Name: "lab-1", RuntimeVersion: "containerd://1.7.20", KubeletVersion: "v1.36.3"}},
		Pods:  []PodMounts{withMounts(ds, pod("monitoring", "agent-a", "lab-1", mount{"dockersock", "/var/run/docker.sock", ""}))},
	})
	f, ok := kubetest.Find(got, IDDockerSocketMount, "agent")
	if !ok {
		t.Fatalf("no docker-socket-mount finding: %+v", got)
	}
	want := "DaemonSet monitoring/agent mounts hostPath /var/run/docker.sock into container main, but node(s) lab-1 run containerd, not Docker"
	if !strings.HasPrefix(f.RootCause, want) {
		t.Errorf("root cause %q\nwant prefix %q", f.RootCause, want)
	}
	n, _ := kubetest.Find(got, IDNode, "lab-1")
	if n.Evidence[0] != "node lab-1: containerRuntimeVersion=containerd://1.7.20, kubelet v1.36.3" {
		t.Errorf("node evidence %q", n.Evidence[0])
	}
}

func TestRunWithFakeClient(t *testing.T) {
	yes := true
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "builder-5d8f7", OwnerReferences: []metav1.OwnerReference{
		{APIVersion: "apps/v1", Kind: "Deployment", Name: "builder", Controller: &yes}}}}
	p1 := pod("ci", "builder-5d8f7-aaaaa", "lab-1", mount{"dockersock", "/var/run/docker.sock", ""})
	p1.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "builder-5d8f7", Controller: &yes}}
	p2 := p1.DeepCopy()
	p2.Name = "builder-5d8f7-bbbbb"
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "lab-1"}, Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{
		ContainerRuntimeVersion: "containerd://1.7.20", KubeletVersion: "v1.36.3"}}}
	cs := fake.NewClientset(node, rs, p1, p2, pod("default", "plain", "lab-1"))
	rec := &kubetest.Recorder{}
	if err := New().Run(context.Background(), &probes.Env{Kube: cs}, rec); err != nil {
		t.Fatal(err)
	}
	kubetest.CheckContract(t, rec.Findings)
	if len(rec.Stages) != 3 {
		t.Errorf("stages %v", rec.Stages)
	}
	f, ok := kubetest.Find(rec.Findings, IDDockerSocketMount, "builder")
	if !ok || f.Subject.Kind != "Deployment" || f.Status != model.StatusFail {
		t.Fatalf("want a fail on Deployment ci/builder, got %+v", rec.Findings)
	}
	if !strings.Contains(strings.Join(f.Evidence, "\n"), "2 pod(s): builder-5d8f7-aaaaa, builder-5d8f7-bbbbb") {
		t.Errorf("pods not deduplicated into one workload: %v", f.Evidence)
	}
	info := New().Info()
	if info.ID != ID || !info.Default || info.Scenario != "E" || len(info.RBAC) == 0 {
		t.Errorf("info %+v", info)
	}
}
