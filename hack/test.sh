#!/usr/bin/env bash
# The whole test suite: `make test` (or `hack/test.sh [unit|e2e]`).
#   unit: gofmt, go vet and go test for every Go module of the repository.
#   e2e:  the real local cluster (hack/lab) brought up, the e2e suite run on
#         it, the cluster torn down and the machine checked for leftovers.
# The e2e part needs Linux and root. Elsewhere it fails loudly unless
# NETSLEUTH_SKIP_E2E=1 is set, and then it says that it did not run.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
export GOFLAGS=${GOFLAGS:--buildvcs=false}
modules=(. $(git ls-files '*/go.mod' | xargs -rn1 dirname | grep -v '^hack/kube$\|^hack/coredns$' || true))

unit() {
  echo "== gofmt"
  bad=$(gofmt -l $(git ls-files '*.go'))
  if [ -n "$bad" ]; then echo "gofmt: these files need formatting:"; echo "$bad"; exit 1; fi
  for m in "${modules[@]}"; do
    echo "== go vet ($m)"; (cd "$m" && go vet ./...)
  done
  for m in "${modules[@]}"; do
    echo "== go test -race ($m)"; (cd "$m" && go test -race -count=1 ./...)
  done
}

e2e() {
  if [ "$(uname -s)" != Linux ] || [ "$(id -u)" != 0 ]; then
    msg="the e2e suite needs Linux and root to run the local cluster (this is $(uname -s), uid $(id -u))"
    if [ "${NETSLEUTH_SKIP_E2E:-}" = 1 ]; then
      echo "!! E2E NOT RUN: $msg; NETSLEUTH_SKIP_E2E=1 was set, so only the unit tests ran"
      return 0
    fi
    echo "!! $msg. Run as root on Linux, or set NETSLEUTH_SKIP_E2E=1 to run only the unit tests." >&2
    exit 1
  fi
  echo "== lab cluster up"
  go run ./hack/lab up
  echo "== e2e suite"
  # The suite tears the lab down and checks for leftovers at its end.
  set +e
  go test -count=1 -tags e2e -timeout 30m -v ./test/e2e/... 2>&1 | tee .lab/e2e.log
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" != 0 ]; then
    echo "e2e failed (full log: .lab/e2e.log)"
    go run ./hack/lab down || true
    exit "$status"
  fi
}

# On Linux as root, install the lab's Debian packages first: some unit tests
# (the enforcer fixture's) use iptables inside a private network namespace.
if [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ]; then
  go run ./hack/lab deps
fi

case $what in
  unit) unit ;;
  e2e) e2e ;;
  all) unit; e2e ;;
  *) echo "usage: hack/test.sh [unit|e2e|all]" >&2; exit 2 ;;
esac
