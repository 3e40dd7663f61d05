#!/usr/bin/env bash
# Scale benchmark: netsleuth on a synthetic cluster in the lab's real API
# server (`lab synth small|medium|large`: 200/1,000/2,000 NotReady nodes with
# 6,000/30,000/60,000 pods, Services, EndpointSlices and NetworkPolicies),
# next to `kubectl get pods,nodes,services,endpointslices,networkpolicies -A
# -o json` on the same cluster in the same run (farm-bench pairs them).
# For each size: wall and peak RSS (farm-bench medians), API requests and
# bytes read (NETSLEUTH_API_STATS). Run from the repo root with the lab up;
# SIZES="small" limits the sizes. The synthetic cluster is removed at the end.
set -euo pipefail
export KUBECONFIG=$PWD/.lab/kubeconfig
bin=.lab/bin/netsleuth-bench
lab=.lab/bin/lab-bench
CGO_ENABLED=0 go build -o "$bin" .
go build -o "$lab" ./hack/lab
trap '"$lab" synth off' EXIT
agent="--agent-image netsleuth.local/netsleuth:dev --agent-pull-policy Never"
kubectl=$(command -v kubectl)
peer="$kubectl get pods,nodes,services,endpointslices,networkpolicies -A -o json"
for size in ${SIZES:-small medium large}; do
  echo "== $size"
  /usr/bin/time -f "lab synth $size: %e s" "$lab" synth "$size" 2>&1 | tail -2
  for mode in "--read-only" ""; do
    cmd="$bin check ${mode} $agent -o json --exit-zero-on-failure --output-file /dev/null"
    echo "-- netsleuth check ${mode:-(default suite)} vs kubectl get -A -o json"
    farm-bench -n 3 --warmup 1 --timeout 900 --vs "$peer" -- $cmd
    NETSLEUTH_API_STATS=1 $cmd 2>&1 | grep 'API requests'
  done
done
