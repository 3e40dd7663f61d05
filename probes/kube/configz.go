package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/netsleuth/netsleuth/model"
)

// ErrNoRESTClient is returned when the clientset has no REST client to proxy
// through (the fake clientset used in unit tests).
var ErrNoRESTClient = errors.New("clientset has no REST client for the node proxy")

// RBACConfigz is what KubeletConfig needs: the API server proxies the
// request to the kubelet.
var RBACConfigz = []model.Permission{{Resource: "nodes", Subresource: "proxy", Verbs: []string{"get"}}}

// KubeletConfig reads a node's live kubelet configuration through the API
// server: GET /api/v1/nodes/<node>/proxy/configz, which answers
// {"kubeletconfig": {...}}. It needs get on nodes/proxy; callers should treat
// errors matched by Unavailable as "configz not readable", not as failures.
func KubeletConfig(ctx context.Context, c kubernetes.Interface, node string) (*kubeletv1beta1.KubeletConfiguration, error) {
	rc := c.CoreV1().RESTClient()
	if r, ok := rc.(*rest.RESTClient); rc == nil || ok && r == nil {
		return nil, ErrNoRESTClient
	}
	raw, err := rc.Get().Resource("nodes").Name(node).SubResource("proxy").Suffix("configz").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading configz of node %s: %w", node, err)
	}
	return DecodeConfigz(raw)
}

// DecodeConfigz decodes the body of a configz response.
func DecodeConfigz(raw []byte) (*kubeletv1beta1.KubeletConfiguration, error) {
	var wrapper struct {
		KubeletConfig *kubeletv1beta1.KubeletConfiguration `json:"kubeletconfig"`
	}
	if err := json.Unmarshal(raw, &wrapper); err != nil {
		return nil, fmt.Errorf("decoding configz: %w", err)
	}
	if wrapper.KubeletConfig == nil {
		return nil, errors.New("decoding configz: no kubeletconfig object in the response")
	}
	return wrapper.KubeletConfig, nil
}
