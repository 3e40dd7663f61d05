#!/usr/bin/env bash
# The peer for the active-suite benchmark: what an engineer scripts by hand
# with kubectl to check pod-to-pod across the lab's two nodes — a namespace,
# two test pods on node 1 and one on node 2, wget between them (same node and
# both directions across nodes), then delete and wait. It sends TCP only;
# netsleuth's pod-to-pod also sends UDP and ICMP and reads node facts.
set -euo pipefail
kc=${KUBECONFIG:?}
ns=peer-bench-$$
k() { kubectl --kubeconfig "$kc" -n "$ns" "$@" 2>/dev/null; }
kubectl --kubeconfig "$kc" create namespace "$ns" >/dev/null 2>&1
pod() {
  k run "$1" --image=netsleuth.local/labecho:lab --image-pull-policy=Never --restart=Never \
    --overrides="{\"spec\":{\"nodeName\":\"$2\"}}" --command -- labecho --http=:8080 >/dev/null
}
pod a nsl-node1; pod b nsl-node1; pod c nsl-node2
k wait --for=condition=Ready pod/a pod/b pod/c --timeout=60s >/dev/null
ip() { k get pod "$1" -o jsonpath='{.status.podIP}'; }
for pair in "a b" "a c" "c a"; do
  set -- $pair
  k exec "$1" -- timeout 3 wget -qO- "http://$(ip "$2"):8080/" >/dev/null
done
kubectl --kubeconfig "$kc" delete namespace "$ns" --wait=true >/dev/null 2>&1
