//go:build e2e

package e2e

import (
	"encoding/json"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/netsleuth/netsleuth/model"
)

// TestCheckHealthyLab: on the healthy lab every default probe reports, the
// report keeps the schema contract and names the CNI, and nothing fails.
func TestCheckHealthyLab(t *testing.T) {
	r, code := check(t, agentFlags...)
	if code != 0 {
		t.Errorf("exit %d on a healthy cluster, want 0", code)
	}
	if r.Cluster.Version != "v1.36.3" || r.Cluster.Server != "https://10.250.0.1:6443" || r.Cluster.Context != "netsleuth-lab" {
		t.Errorf("cluster block %+v does not describe the lab", r.Cluster)
	}
	if want := onProfile("plain bridge", "Calico v3.31.0"); r.Cluster.CNI != want {
		t.Errorf("report names the CNI %q, want %q", r.Cluster.CNI, want)
	}
	byProbe := map[string]int{}
	for _, f := range r.Findings {
		byProbe[f.Probe]++
		if f.Status.Failing() {
			t.Errorf("healthy lab: %s %s %v: %s", f.ID, f.Status, f.Subject, f.RootCause)
		}
	}
	for _, p := range defaultProbes(t) {
		if byProbe[p] == 0 {
			t.Errorf("probe %s reported nothing", p)
		}
	}
	for _, node := range []string{"Node/nsl-node1", "Node/nsl-node2"} {
		find(t, r, want{id: "runtime.node", status: "pass", subject: node})
		find(t, r, want{id: "podcidr.node", status: "pass", subject: node})
	}
	find(t, r, want{id: "services.ok", status: "pass", subject: "Service/kube-system/kube-dns"})
}

// defaultProbes lists the IDs of the probes a bare run executes.
func defaultProbes(t *testing.T) []string {
	t.Helper()
	out, stderr, code := netsleuthCmd(t, "probes", "-o", "json")
	if code != 0 {
		t.Fatalf("netsleuth probes: exit %d: %s", code, stderr)
	}
	var infos []model.ProbeInfo
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		t.Fatalf("netsleuth probes -o json: %v", err)
	}
	var ids []string
	for _, p := range infos {
		if p.Default {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) < 5 {
		t.Fatalf("only %d default probes: %v", len(ids), ids)
	}
	return ids
}

// TestRuntimeDockerSocketMount: a Deployment mounting docker.sock on a
// containerd cluster is named with its container and the migration fix. Its
// pod is never scheduled, so nothing is mounted on the host.
func TestRuntimeDockerSocketMount(t *testing.T) {
	ns := namespace(t, nil)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "builder"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			// Its pods never schedule (nodeSelector): Recreate lets a changed
			// template replace them instead of waiting for a new pod to be ready.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "builder"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "builder"}},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"netsleuth.dev/never": "true"},
					Containers: []corev1.Container{{Name: "docker", Image: labImage, ImagePullPolicy: corev1.PullNever,
						VolumeMounts: []corev1.VolumeMount{{Name: "sock", MountPath: "/var/run/docker.sock"}}}},
					Volumes: []corev1.Volume{{Name: "sock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
						Path: "/var/run/docker.sock", Type: ptr.To(corev1.HostPathSocket)}}}},
				},
			},
		},
	}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctxT(t, 10*time.Second), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the Deployment's pod exists", func() (bool, string) {
		pods, err := kube.CoreV1().Pods(ns).List(ctxT(t, 5*time.Second), metav1.ListOptions{})
		return err == nil && len(pods.Items) == 1, ""
	})
	r, code := check(t, "--probe", "runtime")
	if code != 1 {
		t.Errorf("exit %d, want 1 for a failing finding", code)
	}
	mount := want{id: "runtime.docker-socket-mount", status: "fail", subject: "Deployment/" + ns + "/builder",
		rootCause: `/var/run/docker\.sock.*container docker.*run containerd, not Docker`, fix: `"$patch":"delete"`}
	find(t, r, mount)
	proveFix(t, r, mount, func() *model.Report { r, _ := check(t, "--probe", "runtime"); return r })
}

// TestServicesFindings: a selector that matches nothing, and a Service whose
// only pod never becomes ready, each get their own finding.
func TestServicesFindings(t *testing.T) {
	ns := namespace(t, nil)
	ctx := ctxT(t, 30*time.Second)
	svc := func(name, app string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": app}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	}
	for _, s := range []*corev1.Service{svc("typo", "frnt"), svc("web", "web")} {
		if _, err := kube.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pod := echoPod("web-0", "nsl-node2", map[string]string{"app": "web"})
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(9999)}}}
	startPod(t, ns, pod)
	startPod(t, ns, echoPod("front-0", "nsl-node1", map[string]string{"app": "front"}))
	r, code := check(t, "--probe", "services", "-n", ns)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	typo := want{id: "services.selector-no-match", status: "fail", subject: "Service/" + ns + "/typo",
		rootCause: `selects app=frnt but no pod`, fix: "kubectl -n " + ns + " patch service typo"}
	find(t, r, typo)
	find(t, r, want{id: "services.no-ready-endpoints", status: "fail", subject: "Service/" + ns + "/web",
		rootCause: `web-0`})
	// The selector fix is proven; the never-ready pod's is not applied: its
	// readiness probe fails because the application does not serve /healthz
	// on 9999, and only its owner can say whether the probe or the app is wrong.
	proveFix(t, r, typo, func() *model.Report { r, _ := check(t, "--probe", "services", "-n", ns); return r })
}

// TestIPMasqMissingPodCIDR: an ip-masq-agent ConfigMap that covers only node
// 1's pod CIDR fails for node 2, and the fix is the corrected ConfigMap.
func TestIPMasqMissingPodCIDR(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	node2, err := kube.CoreV1().Nodes().Get(ctx, "nsl-node2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node1, err := kube.CoreV1().Nodes().Get(ctx, "nsl-node1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ip-masq-agent", Namespace: "kube-system"},
		Data: map[string]string{"config": "nonMasqueradeCIDRs:\n  - " + node1.Spec.PodCIDR + "\nmasqLinkLocal: false\n"}}
	if _, err := kube.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().ConfigMaps("kube-system").Delete(ctxT(t, 10*time.Second), "ip-masq-agent", metav1.DeleteOptions{})
	})
	r, code := check(t, "--probe", "ipmasq")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	find(t, r, want{id: "ipmasq.pod-cidr-covered", status: "pass", subject: "Node/nsl-node1"})
	f := find(t, r, want{id: "ipmasq.pod-cidr-masqueraded", status: "fail", subject: "Node/nsl-node2",
		rootCause: `do not include node nsl-node2's pod CIDR ` + node2.Spec.PodCIDR, fix: "- " + node2.Spec.PodCIDR})
	if !fixMentions(f, "- "+node1.Spec.PodCIDR) {
		t.Errorf("corrected ConfigMap dropped the CIDR that was there: %+v", f.Fixes)
	}
	proveFix(t, r, want{id: "ipmasq.pod-cidr-masqueraded", status: "fail", subject: "Node/nsl-node2"},
		func() *model.Report { r, _ := check(t, "--probe", "ipmasq"); return r })
}
