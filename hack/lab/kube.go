package main

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"net/netip"
	"strings"
	"text/template"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
)

//go:embed manifests
var manifests embed.FS

func (l *lab) client() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", l.p.Kubeconfig())
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(cfg)
}

func render(name string) ([]byte, error) {
	b, err := manifests.ReadFile("manifests/" + name)
	if err != nil {
		return nil, err
	}
	t, err := template.New(name).Parse(string(b))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	err = t.Execute(&out, map[string]string{
		"Image": corednsImage, "DNSIP": kubeDNSIP.String(),
		"UpstreamDNS": upstreamDNS.String(), "ExternalHost": externalHost.String(), "NodeLocalDNS": nodeLocalDNS.String(),
	})
	return out.Bytes(), err
}

// apply creates or replaces every object of a multi-document manifest.
func apply(ctx context.Context, cs kubernetes.Interface, doc []byte) error {
	for _, part := range strings.Split(string(doc), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(part), nil, nil)
		if err != nil {
			return fmt.Errorf("decode manifest: %w", err)
		}
		if err := applyOne(ctx, cs, obj); err != nil {
			return err
		}
	}
	return nil
}

func applyOne(ctx context.Context, cs kubernetes.Interface, obj runtime.Object) error {
	var err error
	switch o := obj.(type) {
	case *corev1.ServiceAccount:
		_, err = cs.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.ClusterRole:
		_, err = cs.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.ClusterRoleBinding:
		_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
	case *corev1.ConfigMap:
		_, err = cs.CoreV1().ConfigMaps(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *appsv1.Deployment:
		_, err = cs.AppsV1().Deployments(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *appsv1.DaemonSet:
		_, err = cs.AppsV1().DaemonSets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Service:
		_, err = cs.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	default:
		return fmt.Errorf("apply: unsupported kind %T", obj)
	}
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// waitFor polls cond every 250 ms until it holds or timeout passes, and says
// what it was waiting for when it gives up.
func waitFor(ctx context.Context, what string, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	start := time.Now()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err
		}
		return ok, nil
	})
	if err != nil {
		if last != nil {
			return fmt.Errorf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
		}
		return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
	}
	step("%s (%.1fs)", what, time.Since(start).Seconds())
	return nil
}

// podCIDRs waits for the controller-manager to allocate every node a pod CIDR.
func podCIDRs(ctx context.Context, cs kubernetes.Interface) (map[string]netip.Prefix, error) {
	out := map[string]netip.Prefix{}
	err := waitFor(ctx, "every node registered with a pod CIDR", 90*time.Second, func(ctx context.Context) (bool, error) {
		for _, n := range nodes {
			node, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if node.Spec.PodCIDR == "" {
				return false, nil
			}
			p, err := netip.ParsePrefix(node.Spec.PodCIDR)
			if err != nil {
				return false, err
			}
			out[n.Name] = p
		}
		return true, nil
	})
	return out, err
}

// remove deletes every object of a multi-document manifest that apply can
// create, ignoring those already gone.
func remove(ctx context.Context, cs kubernetes.Interface, doc []byte) error {
	for _, part := range strings.Split(string(doc), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(part), nil, nil)
		if err != nil {
			return fmt.Errorf("decode manifest: %w", err)
		}
		var derr error
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			derr = cs.CoreV1().ConfigMaps(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{})
		case *appsv1.DaemonSet:
			derr = cs.AppsV1().DaemonSets(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{})
		default:
			return fmt.Errorf("remove: unsupported kind %T", obj)
		}
		if derr != nil && !apierrors.IsNotFound(derr) {
			return derr
		}
	}
	return nil
}

func daemonSetReady(ns, name string, cs kubernetes.Interface) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.DesiredNumberScheduled == int32(len(nodes)) && d.Status.NumberReady == d.Status.DesiredNumberScheduled, nil
	}
}

func nodesReady(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	for _, n := range nodes {
		node, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return false, nil
		}
	}
	return true, nil
}

func deploymentReady(ns, name string, cs kubernetes.Interface) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		return d.Status.ReadyReplicas == want && d.Status.UpdatedReplicas == want, nil
	}
}
