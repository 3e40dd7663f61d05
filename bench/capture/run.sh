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

# measure NAME RUNS CMD...: prints "NAME median_seconds max_rss_kb" after
# running CMD RUNS times under /usr/bin/time -v (wall from date, RSS from time).
measure() {
	local name=$1 n=$2
	shift 2
	local walls=() rss=0
	for _ in $(seq "$n"); do
		local t0 t1
		t0=$(date +%s%N)
		/usr/bin/time -v "$@" >"$work/out" 2>"$work/time" || { cat "$work/time" >&2; exit 1; }
		t1=$(date +%s%N)
		walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", (b-a)/1e9}')")
		r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
		[ "$r" -gt "$rss" ] && rss=$r
	done
	median=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	echo "$name $median $rss"
}

netsleuth=$(GOMAXPROCS=1 measure netsleuth "$runs" "$work/decode" "$work/mix.pcap")
grep "^packets" "$work/out"
tcpdump=$(measure tcpdump "$runs" sh -c "tcpdump -q -nn -r $work/mix.pcap >/dev/null 2>&1")
tshark=$(measure tshark "$tshark_runs" sh -c "tshark -n -q -z conv,ip -r $work/mix.pcap >/dev/null 2>&1")

printf '\n%-10s %12s %14s %12s %10s\n' tool "median wall" "packets/s" "netsleuth ×" "peak RSS"
ns_wall=$(echo "$netsleuth" | cut -d' ' -f2)
for row in "$netsleuth" "$tcpdump" "$tshark"; do
	read -r name wall rss <<<"$row"
	awk -v n="$name" -v w="$wall" -v r="$rss" -v p="$packets" -v nw="$ns_wall" \
		'BEGIN {printf "%-10s %11.3fs %14.0f %11.1f× %7.1f MB\n", n, w, p/w, w/nw, r/1024}'
done
echo "(wall times include process start; netsleuth with GOMAXPROCS=1; median of $runs runs, tshark $tshark_runs)"
