#!/usr/bin/env bash
# DNS latency measured by netsleuth's dnsquery package vs dig (Debian
# dnsutils) against the same servers in the same run, and queries/s from one
# process. Servers: the lab's upstream DNS (10.250.0.53), CoreDNS through the
# kube-dns ClusterIP (10.96.0.10, reachable from the host in the lab), and an
# in-process server on 127.0.0.1 that answers after 5 ms (so dig's
# whole-millisecond "Query time" can be compared). Lab addresses only.
# Usage: bench/dns/run.sh [dnsbench flags], e.g. -n 500 -rounds 5
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v dig >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dnsutils >/dev/null; }
go run ./hack/lab status >/dev/null 2>&1 || { echo "bench/dns: the lab is not up (go run ./hack/lab up)" >&2; exit 1; }
echo "machine: $(nproc) CPUs, $(uname -sr), $(go version | cut -d' ' -f3), $(dig -v 2>&1)"
CGO_ENABLED=0 go build -o /tmp/netsleuth-dnsbench ./bench/dns
exec /tmp/netsleuth-dnsbench "$@"
