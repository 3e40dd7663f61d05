#!/usr/bin/env bash
# Benchmarks (not tests): `make bench` or `hack/bench.sh [policy|check|dns|active|lab]...`.
# Each figure is measured next to a peer tool in the same run; BENCHMARKS.md
# quotes the medians and ratios these commands print.
#   policy  the NetworkPolicy engine vs the cyclonus matcher (bench/policy/run.sh)
#   check   `netsleuth check` of the read-only probes vs kubectl fetching the same objects
#   dns     DNS latency measured by netsleuth vs dig against the same server (bench/dns)
#   active  the default active suite on the lab: wall time and API calls (bench/active)
#   capture the flow decoder on a generated 1M-packet pcap vs tcpdump and tshark (bench/capture)
#   lab     warm lab bring-up and teardown (takes the lab down; not in the default set)
#   lab-calico  the same for the calico profile (up --cni calico: both nodes Ready, felix ready)
set -euo pipefail
cd "$(dirname "$0")/.."
need() { command -v "$1" >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; }; }
need hyperfine hyperfine
[ -x /usr/bin/time ] || need time time
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(go version | cut -d' ' -f3)"

# medians prints each command's median and the ratio of the first to the second.
medians() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
for x in r:
    print(f"median {x['median']*1000:8.1f} ms  {x['command'][:90]}")
if len(r) == 2:
    print(f"ratio first/second (medians): {r[0]['median']/r[1]['median']:.2f}")
PY
}

check_bench() {
  go run ./hack/lab up >/dev/null
  CGO_ENABLED=0 go build -o .lab/bin/netsleuth-bench .
  kc=.lab/kubeconfig
  hyperfine -N --warmup 2 --runs 20 --export-json .lab/bench-check.json \
    "./.lab/bin/netsleuth-bench check -o json --kubeconfig $kc --probe runtime --probe services --probe podcidr --probe ipmasq --probe policy --exit-zero-on-failure" \
    "kubectl --kubeconfig $kc get nodes,pods,services,endpointslices,configmaps,networkpolicies,namespaces -A -o json"
  medians .lab/bench-check.json
  /usr/bin/time -v ./.lab/bin/netsleuth-bench check -o json --kubeconfig $kc --exit-zero-on-failure 2>&1 >/dev/null | grep -E 'Maximum resident|Elapsed'
}

lab_bench() {
  local cni=${1:-bridge}
  go build -o .lab/bin/lab-bench ./hack/lab
  for i in 1 2 3; do
    .lab/bin/lab-bench down >/dev/null 2>&1
    /usr/bin/time -f "lab up: %e s wall" .lab/bin/lab-bench up --cni "$cni" 2>&1 | grep -E 'lab up|every node Ready|felix ready|wall'
  done
  /usr/bin/time -f "lab down: %e s wall" .lab/bin/lab-bench down 2>&1 | tail -2
  .lab/bin/lab-bench up --cni "$cni" >/dev/null 2>&1
}

what=("$@")
[ ${#what[@]} -gt 0 ] || what=(policy check dns active capture)
for w in "${what[@]}"; do
  echo "== $w"
  case $w in
    policy) bench/policy/run.sh ;;
    check) check_bench ;;
    dns|active|capture) if [ -x "bench/$w/run.sh" ]; then "bench/$w/run.sh"; else echo "bench/$w/run.sh: not written yet"; fi ;;
    lab) lab_bench bridge ;;
    lab-calico) lab_bench calico ;;
    *) echo "unknown benchmark $w" >&2; exit 2 ;;
  esac
done
