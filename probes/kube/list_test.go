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
