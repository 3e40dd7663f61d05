# netsleuth: the two commands are `make run` and `make test` (see README.md).
GO ?= go
LAB := $(GO) run ./hack/lab
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/netsleuth/netsleuth/cmd.version=$(VERSION)

.PHONY: build run test unit e2e bench cluster-up cluster-down cluster-status demo lint

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o netsleuth .

# Run netsleuth against the current kube context; with none configured, on
# Linux as root, bring up the local lab cluster and run against it.
run: build
	@hack/run.sh ./netsleuth $(ARGS)

# Every test: formatting, vet, unit tests of every module, then the e2e suite
# on the real local cluster (brought up, used and torn down by the suite).
test:
	@hack/test.sh

unit:
	@hack/test.sh unit

e2e:
	@hack/test.sh e2e

bench:
	@hack/bench.sh

# CNI=calico brings up the calico profile (Calico's CNI plugin and felix).
cluster-up:
	$(LAB) up $(if $(CNI),--cni $(CNI))

cluster-down:
	$(LAB) down

cluster-status:
	$(LAB) status

# A newcomer's first run: the lab, one classic fault (pods cannot reach the
# external subnet because the node lost its MASQUERADE rule), and the TUI.
demo: build
	@hack/run.sh --demo ./netsleuth $(ARGS)
