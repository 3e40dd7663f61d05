#!/usr/bin/env bash
# `make run`: run netsleuth against the current kube context. With no context
# configured, on Linux as root, bring up the local lab cluster and use it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1; shift
if [ -n "${KUBECONFIG:-}" ] || [ -f "$HOME/.kube/config" ]; then
  if kubectl config current-context >/dev/null 2>&1 || [ -n "${KUBECONFIG:-}" ]; then
    exec "$bin" "$@"
  fi
fi
if [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ]; then
  echo "netsleuth: no kube context is configured; bringing up the local lab cluster (go run ./hack/lab up)" >&2
  go run ./hack/lab up
  # The lab has no registry: its agent image is built and imported locally.
  exec "$bin" --kubeconfig .lab/kubeconfig --agent-image netsleuth.local/netsleuth:dev --agent-pull-policy Never "$@"
fi
echo "netsleuth: no kube context is configured: set KUBECONFIG or ~/.kube/config, or run as root on Linux to use the local lab cluster" >&2
exit 2
