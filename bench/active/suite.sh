#!/usr/bin/env bash
# The default suite (every default probe, agents included) on the lab, this
# checkout next to a baseline build of netsleuth (BASELINE=path, e.g. a build
# of the commit before a change) in the same run: wall time (farm-bench: A B
# A B … pairs, medians), API requests and bytes read (NETSLEUTH_API_STATS),
# and the time from launch to the first finding on screen (stderr on a
# terminal: the first probe's progress line), median of RUNS (default 5)
# after one warm-up. Run from the repo root with the lab up.
set -euo pipefail
export KUBECONFIG=$PWD/.lab/kubeconfig
bin=.lab/bin/netsleuth-bench
CGO_ENABLED=0 go build -o "$bin" .
runs=${RUNS:-5}
flags="--agent-image netsleuth.local/netsleuth:dev --agent-pull-policy Never -o json --exit-zero-on-failure --output-file /dev/null"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${BASELINE:-}" ]; then
  farm-bench -n "$runs" --warmup 1 --timeout 900 --vs "$BASELINE check $flags" -- $bin check $flags
else
  farm-bench -n "$runs" --warmup 1 --timeout 900 -- $bin check $flags
fi
for b in $bin ${BASELINE:-}; do
  NETSLEUTH_API_STATS=1 $b check $flags 2>&1 | grep 'API requests' | sed "s|^|$b: |"
done
# first finding: stderr on a pseudo-terminal, timed from launch.
for b in $bin ${BASELINE:-}; do
  python3 - "$runs" $b check $flags <<'PY'
import os, pty, re, statistics, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
first, total = [], []
for i in range(runs + 1):
    m, s = pty.openpty()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=s)
    os.close(s)
    buf, seen = b"", None
    while True:
        try:
            d = os.read(m, 4096)
        except OSError:
            break
        if not d:
            break
        buf += d
        if seen is None and re.search(rb"\d+ pass, \d+ warn", buf):
            seen = time.monotonic() - t0
    p.wait()
    os.close(m)
    if i > 0:  # the first run warms up
        first.append(seen)
        total.append(time.monotonic() - t0)
print(f"{cmd[0]}: first finding on screen after {statistics.median(first):.2f} s (median of {runs}; "
      f"min {min(first):.2f}, max {max(first):.2f}); whole run {statistics.median(total):.2f} s")
PY
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
