#!/usr/bin/env bash
# Benchmarks the static NetworkPolicy engine against cyclonus v0.5.6 on the
# issue-6 workload (20 namespaces, 1,000 pods, 500 policies, 5 ports = 5M
# verdicts) on one core, and compares all 5M verdicts. Run from the repo root.
set -euo pipefail
export GOMAXPROCS=1
bin=$(mktemp -d)/oracle.test
(cd test/oracle && go test -c -o "$bin" .)
cd test/oracle
for i in 1 2 3 4 5; do "$bin" -test.run '^$' -test.bench 'Ours|CyclonusBuild' -test.benchtime 5x; done
/usr/bin/time -v "$bin" -test.run '^$' -test.bench 'BenchmarkOursBuildAndMatrix$' -test.benchtime 1x 2>&1 | grep -E 'Benchmark|Maximum resident'
/usr/bin/time -v "$bin" -test.run '^$' -test.bench 'BenchmarkCyclonusVerdicts$' -test.benchtime 5000000x 2>&1 | grep -E 'Benchmark|Maximum resident'
NETSLEUTH_ORACLE_FULL=1 "$bin" -test.run TestDifferentialFull -test.v -test.timeout 30m
