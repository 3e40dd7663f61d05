package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// Find lists what netsleuth runs other than exceptRunID left in the cluster:
// namespaces, and pods and services in other namespaces, as kind/ns/name.
func Find(ctx context.Context, kube kubernetes.Interface, exceptRunID string) ([]string, error) {
	sel := metav1.ListOptions{LabelSelector: Selector}
	if exceptRunID != "" {
		sel.LabelSelector += "," + LabelRunID + "!=" + exceptRunID
	}
	nss, err := kube.CoreV1().Namespaces().List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("listing namespaces labelled %s: %w", Selector, err)
	}
	var out []string
	own := map[string]bool{}
	for _, n := range nss.Items {
		own[n.Name] = true
		out = append(out, "namespace/"+n.Name)
	}
	pods, err := kube.CoreV1().Pods("").List(ctx, sel)
	if err != nil {
		return out, fmt.Errorf("listing pods labelled %s: %w", Selector, err)
	}
	for _, p := range pods.Items {
		if !own[p.Namespace] {
			out = append(out, "pod/"+p.Namespace+"/"+p.Name)
		}
	}
	svcs, err := kube.CoreV1().Services("").List(ctx, sel)
	if err != nil {
		return out, fmt.Errorf("listing services labelled %s: %w", Selector, err)
	}
	for _, s := range svcs.Items {
		if !own[s.Namespace] {
			out = append(out, "service/"+s.Namespace+"/"+s.Name)
		}
	}
	return out, nil
}

// Cleanup deletes everything netsleuth left in the cluster (every run):
// labelled namespaces, and labelled pods and services elsewhere. It returns
// what it deleted; with dryRun it only lists.
func Cleanup(ctx context.Context, kube kubernetes.Interface, dryRun bool) ([]string, error) {
	found, err := Find(ctx, kube, "")
	if err != nil || dryRun {
		return found, err
	}
	sel := metav1.ListOptions{LabelSelector: Selector}
	zero := metav1.DeleteOptions{GracePeriodSeconds: new(int64)}
	var errs []error
	nss, err := kube.CoreV1().Namespaces().List(ctx, sel)
	if err != nil {
		return found, err
	}
	for _, n := range nss.Items {
		if err := kube.CoreV1().Pods(n.Name).DeleteCollection(ctx, zero, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
		if err := kube.CoreV1().Namespaces().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	pods, err := kube.CoreV1().Pods("").List(ctx, sel)
	if err != nil {
		return found, errors.Join(append(errs, err)...)
	}
	for _, p := range pods.Items {
		if err := kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, zero); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	svcs, err := kube.CoreV1().Services("").List(ctx, sel)
	if err != nil {
		return found, errors.Join(append(errs, err)...)
	}
	for _, s := range svcs.Items {
		if err := kube.CoreV1().Services(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	for _, n := range nss.Items {
		errs = append(errs, waitGone(ctx, kube, n.Name))
	}
	return found, errors.Join(errs...)
}

// deleteServices deletes the services matching sel in ns.
func deleteServices(ctx context.Context, kube kubernetes.Interface, ns string, sel metav1.ListOptions) error {
	l, err := kube.CoreV1().Services(ns).List(ctx, sel)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range l.Items {
		if err := kube.CoreV1().Services(ns).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitGone waits until namespace ns no longer exists, within ctx.
func waitGone(ctx context.Context, kube kubernetes.Interface, ns string) error {
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("namespace %s is still terminating: %w", ns, err)
	}
	return nil
}
