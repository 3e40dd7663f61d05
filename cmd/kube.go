package cmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	apiversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/netsleuth/netsleuth/model"
)

// preflightTimeout bounds the version call made before any probe runs, unless
// --request-timeout is shorter.
const preflightTimeout = 15 * time.Second

// connect loads the kubeconfig and asks the API server for its version, so
// that a bad kubeconfig, an unreachable server, a TLS problem or rejected
// credentials stop the run before anything touches the cluster. Its errors are
// exit-2 errors with one clear sentence.
func connect(ctx context.Context, flags *genericclioptions.ConfigFlags) (*rest.Config, model.Cluster, error) {
	loader := flags.ToRawKubeConfigLoader()
	raw, err := loader.RawConfig()
	if err != nil {
		return nil, model.Cluster{}, kubeconfigError(flags, err)
	}
	if len(raw.Clusters) == 0 && deref(flags.APIServer) == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		// Without this check client-go would fall back to http://localhost:8080.
		return nil, model.Cluster{}, &exitError{code: ExitUsage,
			msg: "no kubeconfig found (KUBECONFIG and ~/.kube/config define no cluster); set KUBECONFIG or pass --kubeconfig"}
	}
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, model.Cluster{}, kubeconfigError(flags, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	// Protobuf: a large cluster's lists cost a fraction of JSON's bytes,
	// decoding time and garbage (configz and other raw reads stay JSON).
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	// The server as reports and messages show it: a password in its URL
	// is redacted.
	cluster := model.Cluster{Context: raw.CurrentContext, Server: model.Redact(cfg.Host)}
	if flags.Context != nil && *flags.Context != "" {
		cluster.Context = *flags.Context
	}
	timeout := preflightTimeout
	if cfg.Timeout > 0 && cfg.Timeout < timeout {
		timeout = cfg.Timeout
	}
	v, err := serverVersion(ctx, cfg, timeout)
	if err != nil {
		return nil, cluster, connectError(cluster, timeout, err)
	}
	cluster.Version = v.GitVersion
	return cfg, cluster, nil
}

// serverVersion is discovery's ServerVersion bounded by ctx and timeout.
func serverVersion(ctx context.Context, cfg *rest.Config, timeout time.Duration) (*apiversion.Info, error) {
	c := rest.CopyConfig(cfg)
	c.Timeout = timeout
	dc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("build discovery client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := dc.RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("get server version: %w", err)
	}
	var info apiversion.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("decode server version: %w", err)
	}
	return &info, nil
}

// kubeconfigError explains why the kubeconfig could not be used.
func kubeconfigError(flags *genericclioptions.ConfigFlags, err error) error {
	path := ""
	if flags.KubeConfig != nil {
		path = *flags.KubeConfig
	}
	e := &exitError{code: ExitUsage, err: err}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		e.msg = fmt.Sprintf("kubeconfig file %s does not exist; pass --kubeconfig with the path of an existing file or set KUBECONFIG", orQuoted(path, "given"))
	case clientcmd.IsEmptyConfig(err):
		e.msg = "no kubeconfig found; set KUBECONFIG or pass --kubeconfig, or run inside a cluster"
	case clientcmd.IsContextNotFound(err) || contextMissing(flags, err):
		e.msg = fmt.Sprintf("context %q is not in the kubeconfig; list the contexts with `kubectl config get-contexts` and pass one with --context", deref(flags.Context))
	default:
		e.msg = oneLine(fmt.Sprintf("cannot load the kubeconfig (%v); fix the file or point --kubeconfig at a valid one", err))
	}
	return e
}

// contextMissing reports whether err says the --context given does not exist.
func contextMissing(flags *genericclioptions.ConfigFlags, err error) bool {
	name := deref(flags.Context)
	return name != "" && strings.Contains(err.Error(), fmt.Sprintf("context %q does not exist", name))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func orQuoted(s, alt string) string {
	if s == "" {
		return alt
	}
	return fmt.Sprintf("%q", s)
}

// connectError explains why the preflight version call failed.
func connectError(c model.Cluster, timeout time.Duration, err error) error {
	e := &exitError{code: ExitUsage, err: err}
	server := c.Server
	var (
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		verify      *tls.CertificateVerificationError
		header      tls.RecordHeaderError
		alert       tls.AlertError
		dnsErr      *net.DNSError
		opErr       *net.OpError
		netErr      net.Error
		ctxHint     = "check that the cluster is running and --context/--kubeconfig point at it"
		credentials = fmt.Sprintf("log in again or renew the token or client certificate of context %q", c.Context)
	)
	switch {
	case apierrors.IsUnauthorized(err):
		e.msg = fmt.Sprintf("the API server at %s rejected the credentials (401 Unauthorized); %s", server, credentials)
	case apierrors.IsForbidden(err):
		e.msg = fmt.Sprintf("the API server at %s refused the version request (403 Forbidden); check the RBAC of the user in context %q", server, c.Context)
	case errors.As(err, &unknownCA), errors.As(err, &verify), errors.As(err, &hostname), errors.As(err, &invalid):
		e.msg = fmt.Sprintf("cannot verify the TLS certificate of the API server at %s (%s); set the cluster's certificate-authority-data in the kubeconfig and check that --context points at the right cluster", server, tlsReason(err))
	case errors.As(err, &header), errors.As(err, &alert):
		e.msg = fmt.Sprintf("the TLS handshake with the API server at %s failed (%s); check the server URL and port in the kubeconfig", server, tlsReason(err))
	case errors.Is(err, syscall.ECONNREFUSED):
		e.msg = fmt.Sprintf("cannot reach the API server at %s: connection refused; %s", server, ctxHint)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		e.msg = fmt.Sprintf("the API server at %s did not answer within %s; %s, or raise --request-timeout", server, timeout, ctxHint)
	case errors.Is(err, context.Canceled):
		e.msg = "interrupted while contacting the API server"
	case errors.As(err, &dnsErr):
		e.msg = fmt.Sprintf("cannot resolve the API server host %s; check the server URL in the kubeconfig and your DNS or VPN", dnsErr.Name)
	case errors.As(err, &opErr):
		e.msg = fmt.Sprintf("cannot reach the API server at %s: %v; %s", server, opErr.Err, ctxHint)
	default:
		e.msg = fmt.Sprintf("the API server at %s answered the version request with an error (%v); %s", server, err, ctxHint)
	}
	e.msg = oneLine(e.msg)
	return e
}

// tlsReason names the TLS failure in a few words.
func tlsReason(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var header tls.RecordHeaderError
	switch {
	case errors.As(err, &unknownCA):
		return "certificate signed by unknown authority"
	case errors.As(err, &hostname):
		return hostname.Error()
	case errors.As(err, &header):
		return "the server did not answer with TLS"
	}
	var verify *tls.CertificateVerificationError
	if errors.As(err, &verify) {
		return verify.Err.Error()
	}
	return err.Error()
}
