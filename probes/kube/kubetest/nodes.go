package kubetest

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SyntheticNodes is a large cluster's nodes as plain data: n nodes named
// node-0000…, spread over three zones, the first three control-plane; the
// nodes whose index is in ready are Ready, the others NotReady in turn
// Unknown (kubelet stopped reporting), False (network plugin not ready) and
// without any condition (never reported).
func SyntheticNodes(n int, ready func(i int) bool) []corev1.Node {
	out := make([]corev1.Node, n)
	for i := range out {
		labels := map[string]string{corev1.LabelTopologyZone: fmt.Sprintf("zone-%c", 'a'+i%3)}
		if i < 3 {
			labels["node-role.kubernetes.io/control-plane"] = ""
		}
		nd := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%04d", i), Labels: labels},
			Spec: corev1.NodeSpec{PodCIDR: fmt.Sprintf("10.%d.%d.0/24", 64+i/256, i%256)},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP,
				Address: fmt.Sprintf("10.250.%d.%d", i/256, i%256)}}}}
		switch {
		case ready(i):
			nd.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}
		case i%3 == 0:
			nd.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
				Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status."}}
		case i%3 == 1:
			nd.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse,
				Reason: "KubeletNotReady", Message: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady"}}
		}
		out[i] = nd
	}
	return out
}
