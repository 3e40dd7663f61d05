#!/usr/bin/env bash
# Scale benchmark: netsleuth on a synthetic cluster in the lab's real API
# server (`lab synth small|medium|large`: 200/1,000/2,000 nodes without a
# kubelet, 6,000/30,000/60,000 pods, Services, EndpointSlices and
# NetworkPolicies), next to `kubectl get pods,nodes,services,endpointslices,
# networkpolicies -A -o json` on the same cluster in the same run (farm-bench
# pairs them: A B A B …). For each size: wall and peak RSS (farm-bench
# medians of RUNS, default 3), API requests and bytes read
# (NETSLEUTH_API_STATS), the synthetic cluster's creation and removal times,
# and the machine's load. Run from the repo root with the lab up; SIZES="small"
# limits the sizes. The synthetic cluster is removed at the end (KEEP_SYNTH=1
# leaves it to `lab down`, which removes it with the lab's etcd).
set -euo pipefail
export KUBECONFIG=$PWD/.lab/kubeconfig
bin=.lab/bin/netsleuth-bench
lab=.lab/bin/lab-bench
CGO_ENABLED=0 go build -o "$bin" .
go build -o "$lab" ./hack/lab
[ -n "${KEEP_SYNTH:-}" ] || trap '"$lab" synth off' EXIT
agent="--agent-image netsleuth.local/netsleuth:dev --agent-pull-policy Never"
kubectl=$(command -v kubectl)
peer="$kubectl get pods,nodes,services,endpointslices,networkpolicies -A -o json"
load() { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }
for size in ${SIZES:-small medium large}; do
  echo "== $size"
  load
  /usr/bin/time -f "lab synth $size: %e s wall" "$lab" synth "$size" 2>&1 | grep -E 'synthetic cluster|created|EndpointSlices in|removed|wall'
  echo "kubectl read: $($peer | wc -c) bytes of JSON"
  for mode in "--read-only" ""; do
    cmd="$bin check ${mode} $agent -o json --exit-zero-on-failure --output-file /dev/null"
    echo "-- netsleuth check ${mode:-(default suite)} vs kubectl get -A -o json"
    load
    farm-bench -n "${RUNS:-3}" --warmup 1 --timeout 1800 --vs "$peer" -- $cmd
    NETSLEUTH_API_STATS=1 $cmd 2>&1 | grep 'API requests'
  done
  load
done
if [ -z "${KEEP_SYNTH:-}" ]; then
  /usr/bin/time -f "lab synth off: %e s wall" "$lab" synth off 2>&1 | grep -E 'removed|wall'
  trap - EXIT
fi
