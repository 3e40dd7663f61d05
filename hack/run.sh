#!/usr/bin/env bash
# `make run`: run netsleuth against the current kube context. With no context
# configured, on Linux as root, fall back to the demo: bring up the local lab
# cluster, seed the classic fault (the node lost its MASQUERADE rule, so pods
# cannot reach the external subnet) and run netsleuth on it.
# `make demo` (hack/run.sh --demo BIN) goes straight to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=0
if [ "${1:-}" = --demo ]; then demo=1; shift; fi
bin=$1; shift
if [ $demo = 0 ] && { [ -n "${KUBECONFIG:-}" ] || [ -f "$HOME/.kube/config" ]; }; then
  exec "$bin" "$@"
fi
if [ "$(uname -s)" != Linux ] || [ "$(id -u)" != 0 ]; then
  echo "netsleuth: no kube context is configured: set KUBECONFIG or ~/.kube/config, or run as root on Linux to use the local lab cluster (make demo)" >&2
  exit 2
fi
[ $demo = 1 ] || echo "netsleuth: no kube context is configured; starting the demo on the local lab cluster" >&2
go run ./hack/lab up
status=$(go run ./hack/lab status 2>/dev/null || true)
if ! grep -q '^active faults:.*snat' <<<"$status"; then
  go run ./hack/lab fault snat
fi
echo "demo: pods on nsl-node1 cannot reach 192.168.2.10 (their node lost its MASQUERADE rule);" \
  "'go run ./hack/lab unfault snat' mends it, 'make cluster-down' ends the lab" >&2
# The lab has no registry: its agent image is built and imported locally.
exec "$bin" --kubeconfig .lab/kubeconfig --agent-image netsleuth.local/netsleuth:dev --agent-pull-policy Never \
  --target 192.168.2.10:80 "$@"
