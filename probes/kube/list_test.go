package kube

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestListAllPagesTrimsAndSizesOnce: listAll follows the continue tokens,
// drops managedFields from every object, and sizes its result from the
// first page's count of what is still to come.
func TestListAllPagesTrimsAndSizesOnce(t *testing.T) {
	const total, page = 1234, 500
	var calls []string
	got, err := listAll(context.Background(), func(_ context.Context, o metav1.ListOptions) ([]corev1.Pod, metav1.ListMeta, error) {
		calls = append(calls, o.Continue)
		start, _ := strconv.Atoi(o.Continue)
		var items []corev1.Pod
		for i := start; i < min(start+page, total); i++ {
			items = append(items, corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint(i),
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}}}})
		}
		var meta metav1.ListMeta
		if next := start + page; next < total {
			meta = metav1.ListMeta{Continue: strconv.Itoa(next), RemainingItemCount: ptr.To(int64(total - next))}
		}
		return items, meta, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != total || len(calls) != 3 || calls[1] != "500" || calls[2] != "1000" {
		t.Fatalf("%d items in calls %q, want %d in pages from \"\", 500, 1000", len(got), calls, total)
	}
	if cap(got) != total {
		t.Errorf("result capacity %d, want %d (sized once from the first page)", cap(got), total)
	}
	for i, p := range got {
		if p.Name != strconv.Itoa(i) || p.ManagedFields != nil {
			t.Fatalf("item %d: name %q, managedFields %v", i, p.Name, p.ManagedFields)
		}
	}
}

// TestTrimPodKeepsWhatProbesRead: a pod as a real cluster stores it loses
// what no probe reads and keeps every field a probe does.
func TestTrimPodKeepsWhatProbesRead(t *testing.T) {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "u", ResourceVersion: "7", GenerateName: "web-",
			Labels:          map[string]string{"app": "web"},
			Annotations:     map[string]string{"cni.projectcalico.org/podIP": "10.0.0.5/32", "kubectl.kubernetes.io/last-applied-configuration": "{…}"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-7d9c"}}, Finalizers: []string{"f"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, RestartPolicy: "Always", DNSPolicy: "ClusterFirst",
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}, Affinity: &corev1.Affinity{},
			SecurityContext: &corev1.PodSecurityContext{}, ServiceAccountName: "default", SchedulerName: "default-scheduler",
			Priority: ptr.To[int32](0), EnableServiceLinks: ptr.To(false), TerminationGracePeriodSeconds: ptr.To[int64](30),
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "g"}},
			Volumes:        []corev1.Volume{{Name: "sock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/containerd"}}}},
			Containers: []corev1.Container{{Name: "app", Image: "shop/web:1", Command: []string{"web"}, Args: []string{"--port=8080"},
				Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				VolumeMounts:    []corev1.VolumeMount{{Name: "sock", MountPath: "/run/containerd"}},
				ReadinessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{}}},
				LivenessProbe:   &corev1.Probe{},
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
				Env:             []corev1.EnvVar{{Name: "TOKEN", Value: "x"}}, TerminationMessagePath: "/dev/termination-log"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.5", PodIPs: []corev1.PodIP{{IP: "10.0.0.5"}}, HostIP: "10.250.0.11",
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://abc", Ready: true}}},
	}
	want := p.DeepCopy()
	items := []corev1.Pod{p}
	trim(items)
	got := items[0]
	// Dropped.
	if got.UID != "" || got.ResourceVersion != "" || got.ManagedFields != nil || got.Finalizers != nil || len(got.Annotations) != 1 ||
		got.Spec.Tolerations != nil || got.Spec.Affinity != nil || got.Spec.SecurityContext != nil || got.Spec.ServiceAccountName != "" ||
		got.Spec.SchedulerName != "" || got.Spec.Priority != nil || got.Spec.TerminationGracePeriodSeconds != nil ||
		got.Spec.Containers[0].Env != nil || got.Spec.Containers[0].LivenessProbe != nil || got.Spec.Containers[0].TerminationMessagePath != "" {
		t.Errorf("trimmed pod still carries what no probe reads: %+v", got)
	}
	// Kept, with the same values.
	c, wc := got.Spec.Containers[0], want.Spec.Containers[0]
	if got.Name != want.Name || got.Namespace != want.Namespace || got.Labels["app"] != "web" ||
		got.Annotations["cni.projectcalico.org/podIP"] != "10.0.0.5/32" || len(got.OwnerReferences) != 1 ||
		got.Spec.NodeName != "n1" || !got.Spec.HostNetwork || got.Spec.RestartPolicy != "Always" || got.Spec.DNSPolicy != "ClusterFirst" ||
		len(got.Spec.ReadinessGates) != 1 || len(got.Spec.Volumes) != 1 ||
		c.Name != wc.Name || c.Image != wc.Image || c.Command[0] != "web" || c.Args[0] != "--port=8080" || c.Ports[0].ContainerPort != 8080 ||
		len(c.VolumeMounts) != 1 || c.ReadinessProbe == nil || c.SecurityContext == nil || !*c.SecurityContext.Privileged ||
		got.Status.Phase != corev1.PodRunning || got.Status.PodIP != "10.0.0.5" || got.Status.HostIP != "10.250.0.11" ||
		len(got.Status.Conditions) != 1 || got.Status.ContainerStatuses[0].ContainerID != "containerd://abc" {
		t.Errorf("trimmed pod lost what a probe reads:\n%+v\nwas\n%+v", got, want)
	}
}
