package kube

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// BenchmarkPodsList reads N pods (PODS, default 30,000: the medium
// synthetic cluster's, as the API server stores them, managedFields
// included) served as protobuf pages of 500, through Pods, and reports the
// heap the result keeps (live-MiB, B/pod) and the largest heap in use while
// reading (peak-MiB): the memory a run's Snapshot holds for its pods.
func BenchmarkPodsList(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("PODS"))
	if n == 0 {
		n = 30000
	}
	pages := podPages(b, n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("continue"))
		w.Header().Set("Content-Type", "application/vnd.kubernetes.protobuf")
		_, _ = w.Write(pages[i])
	}))
	defer srv.Close()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL, QPS: 1000, Burst: 1000, ContentConfig: rest.ContentConfig{
		ContentType: "application/vnd.kubernetes.protobuf", AcceptContentTypes: "application/vnd.kubernetes.protobuf"}})
	if err != nil {
		b.Fatal(err)
	}
	var live, peak float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var top atomic.Uint64
		stop := make(chan struct{})
		go func() {
			var m runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				runtime.ReadMemStats(&m)
				if m.HeapInuse > top.Load() {
					top.Store(m.HeapInuse)
				}
			}
		}()
		pods, err := Pods(context.Background(), c, "", "")
		close(stop)
		if err != nil || len(pods) != n {
			b.Fatalf("%d pods, %v", len(pods), err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		live = float64(after.HeapAlloc) - float64(before.HeapAlloc)
		peak = float64(top.Load()) - float64(before.HeapInuse)
		runtime.KeepAlive(pods)
	}
	b.ReportMetric(live/(1<<20), "live-MiB")
	b.ReportMetric(live/float64(n), "B/pod")
	b.ReportMetric(peak/(1<<20), "peak-MiB")
}

// podPages encodes n synthetic pods as protobuf PodList pages of 500.
func podPages(b *testing.B, n int) [][]byte {
	ser := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	var pages [][]byte
	for start := 0; start < n; start += 500 {
		l := &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
		for i := start; i < min(start+500, n); i++ {
			l.Items = append(l.Items, benchPod(i))
		}
		if start+500 < n {
			l.Continue = strconv.Itoa(len(pages) + 1)
			l.RemainingItemCount = ptr.To(int64(n - start - 500))
		}
		w := &buf{}
		if err := ser.Encode(l, w); err != nil {
			b.Fatal(err)
		}
		pages = append(pages, w.b)
	}
	return pages
}

// fields is the managedFields entry the API server records for a pod the
// lab's synth creates.
const fields = `{"f:metadata":{"f:labels":{".":{},"f:app":{},"f:netsleuth.lab/synthetic":{},"f:tier":{}}},"f:spec":{"f:automountServiceAccountToken":{},"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:name":{},"f:protocol":{}}},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:nodeName":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{},"f:tolerations":{}}}`

// benchPod is like the lab's synthetic pod i as the API server stores it
// (defaults filled in, never scheduled to a running kubelet).
func benchPod(i int) corev1.Pod {
	ns := fmt.Sprintf("nsl-synth-%03d", i/300)
	app := (i % 300) % 25
	now := metav1.Now()
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d-%d", app, i%300), Namespace: ns,
			UID: types.UID(fmt.Sprintf("0b7f2f2e-1c2d-4e5f-8a9b-%012d", i)), ResourceVersion: strconv.Itoa(100000 + i), CreationTimestamp: now,
			Labels: map[string]string{"netsleuth.lab/synthetic": "medium", "app": "app-" + strconv.Itoa(app), "tier": "web"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "lab-bench", Operation: "Update", APIVersion: "v1", Time: &now,
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}}},
		Spec: corev1.PodSpec{NodeName: fmt.Sprintf("nsl-synth-node-%04d", i%1000), EnableServiceLinks: ptr.To(false),
			AutomountServiceAccountToken: ptr.To(false), TerminationGracePeriodSeconds: ptr.To[int64](0),
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}, RestartPolicy: "Always", DNSPolicy: "ClusterFirst",
			SchedulerName: "default-scheduler", SecurityContext: &corev1.PodSecurityContext{}, ServiceAccountName: "default",
			Priority: ptr.To[int32](0), PreemptionPolicy: ptr.To(corev1.PreemptLowerPriority),
			Containers: []corev1.Container{{Name: "app", Image: "netsleuth.local/labecho:lab", ImagePullPolicy: "IfNotPresent",
				TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: "File",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort},
	}
}

type buf struct{ b []byte }

func (b *buf) Write(p []byte) (int, error) { b.b = append(b.b, p...); return len(p), nil }
