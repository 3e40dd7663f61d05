#!/usr/bin/env bash
# Active-suite benchmark on the lab: wall time of netsleuth's default active
# probe (pod-to-pod, agents created, traffic sent, everything deleted) next to
# bench/active/peer.sh doing a TCP-only version by hand with kubectl, and the
# API requests netsleuth makes (NETSLEUTH_API_STATS). Run from the repo root
# with the lab up.
set -euo pipefail
export KUBECONFIG=$PWD/.lab/kubeconfig
bin=.lab/bin/netsleuth-bench
CGO_ENABLED=0 go build -o "$bin" .
flags="--agent-image netsleuth.local/netsleuth:dev --agent-pull-policy Never -o json --exit-zero-on-failure"
hyperfine -N --warmup 1 --runs 7 --export-json .lab/bench-active.json \
  "$bin check --probe pod-to-pod $flags" \
  "bash bench/active/peer.sh"
python3 - .lab/bench-active.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
for x in r:
    print(f"median {x['median']:7.2f} s  {x['command'][:80]}")
print(f"ratio netsleuth/peer (medians): {r[0]['median']/r[1]['median']:.2f}")
PY
for probes in "--probe pod-to-pod" "--probe pod-to-pod --probe external --target 192.168.2.10:80" ""; do
  NETSLEUTH_API_STATS=1 /usr/bin/time -f "wall %e s, peak RSS %M KiB" "$bin" check $probes $flags 2>&1 >/dev/null | tr '\n' ' '
  echo " <- check ${probes:-(every default probe)}"
done
