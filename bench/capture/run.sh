#!/usr/bin/env bash
# Flow capture decoder: netsleuth's capture.AnalyzeFile (pcap into the flow
# table, every flow classified; GOMAXPROCS=1) against tcpdump -q and
# tshark's IP conversation table on the same generated capture, in the
# same run. Median wall time of RUNS runs each (tshark: TSHARK_RUNS), peak
# RSS from /usr/bin/time -v. No network: the capture is generated.
# Usage: bench/capture/run.sh [packets]   (default 1000000)
# Env: RUNS (5), TSHARK_RUNS (3), KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
packets=${1:-1000000}
runs=${RUNS:-5}
tshark_runs=${TSHARK_RUNS:-3}
need=()
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v tshark >/dev/null || need+=(tshark)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
work=$(mktemp -d /tmp/netsleuth-capbench.XXXXXX)
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/gen" ./bench/capture/gen
CGO_ENABLED=0 go build -o "$work/decode" ./bench/capture/decode
"$work/gen" -n "$packets" -o "$work/mix.pcap"
size=$(stat -c %s "$work/mix.pcap")
cat "$work/mix.pcap" >/dev/null # into the page cache
echo "machine: $(nproc) CPUs, $(uname -sr), $(go version | cut -d' ' -f3), $(tcpdump --version 2>&1 | head -1), $(tshark -v 2>/dev/null | head -1 | cut -d' ' -f1-3)"
echo "capture: $packets packets, $((size / 1000000)) MB"

# measure NAME RUNS CMD...: prints "NAME median_wall_s median_cpu_s max_rss_kb"
# after running CMD RUNS times under /usr/bin/time -v (wall from date; CPU,
# user + system, and RSS from time). On a machine busy with other work the
# CPU time says what each tool needed better than the wall clock does.
measure() {
	local name=$1 n=$2
	shift 2
	local walls=() cpus=() rss=0
	for _ in $(seq "$n"); do
		local t0 t1
		t0=$(date +%s%N)
		/usr/bin/time -v "$@" >"$work/out" 2>"$work/time" || { cat "$work/time" >&2; exit 1; }
		t1=$(date +%s%N)
		walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", (b-a)/1e9}')")
		cpus+=("$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.4f", u+s}' "$work/time")")
		r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
		[ "$r" -gt "$rss" ] && rss=$r
	done
	echo "$name $(median "${walls[@]}") $(median "${cpus[@]}") $rss"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
netsleuth=$(GOMAXPROCS=1 measure netsleuth "$runs" "$work/decode" "$work/mix.pcap")
grep -E "^(packets|CPU time)" "$work/out"
tcpdump=$(measure tcpdump "$runs" sh -c "tcpdump -q -nn -r $work/mix.pcap >/dev/null 2>&1")
tshark=$(measure tshark "$tshark_runs" sh -c "tshark -n -q -z conv,ip -r $work/mix.pcap >/dev/null 2>&1")
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

printf '\n%-10s %12s %11s %14s %12s %10s %10s\n' tool "median wall" "median CPU" "packets/s" "× wall" "× CPU" "peak RSS"
read -r _ ns_wall ns_cpu _ <<<"$netsleuth"
for row in "$netsleuth" "$tcpdump" "$tshark"; do
	read -r name wall cpu rss <<<"$row"
	awk -v n="$name" -v w="$wall" -v c="$cpu" -v r="$rss" -v p="$packets" -v nw="$ns_wall" -v nc="$ns_cpu" \
		'BEGIN {printf "%-10s %11.3fs %10.3fs %14.0f %11.1f× %9.1f× %7.1f MB\n", n, w, c, p/w, w/nw, c/nc, r/1024}'
done
echo "(whole processes, start and exit included; netsleuth with GOMAXPROCS=1; median of $runs runs, tshark $tshark_runs;"
echo " × wall and × CPU: how many times the tool's median exceeds netsleuth's)"
