# Herald's build, code generation and test entry points.
#
# make test   runs everything CI runs (root needed for the network-namespace tests),
#             ending with a short chaos soak (make soak).
# make lab    brings up the product end to end in network namespaces (root needed).

SHELL := /bin/bash
GO ?= go
# HERALD_CACHE holds the Kubernetes, etcd, containerd and CNI builds, keyed by version.
HERALD_CACHE ?= $(HOME)/.cache/herald
export HERALD_CACHE

.PHONY: images push all build plugin vet generate verify-generate deps binaries test test-unit test-e2e soak bench lab lab-pods lab-down

all: build

build:
	$(GO) build ./...
	cd e2e && $(GO) build ./...

# plugin installs the kubectl plugin, kubectl-herald, into $(go env GOBIN) (or
# $(go env GOPATH)/bin): with that on PATH, "kubectl herald" runs it. See docs/plugin.md.
plugin:
	$(GO) install ./cmd/kubectl-herald

vet:
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...

# generate refreshes deepcopy functions, CRD manifests and the typed clientset,
# listers and informers from the API types in config/v1alpha1.
generate:
	bash .ci/generate

# verify-generate fails when the generated files are stale.
verify-generate: generate
	@git diff --exit-code -- config deploy || { echo "generated files are stale: run 'make generate' and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- config deploy)" || { git status --porcelain -- config deploy; echo "generated files are untracked: run 'make generate' and commit" >&2; exit 1; }

# deps installs the Debian packages the tests and the lab use (only what is missing).
deps:
	bash .ci/install-deps

# binaries builds kube-apiserver, etcd, kube-proxy, kubectl, kubelet, kube-controller-manager,
# kube-scheduler, containerd and the CNI plugins from source into $(HERALD_CACHE).
binaries:
	bash e2e/controlplane/build/build.sh

test: deps binaries test-unit test-e2e soak

test-unit: vet
	$(GO) test -race -count=1 ./...

# The e2e packages run one at a time (-p 1): they time failovers and
# reactions in network namespaces, which a concurrent package would distort.
test-e2e: binaries
	cd e2e && $(GO) test -race -count=1 -p 1 -timeout 60m ./...

# soak runs the chaos soak (root needed): random changes and faults against the
# product lab for SOAK_DURATION, with Herald's promises checked from the API and
# the wire; it fails on any violation. The same SOAK_SEED replays the same steps.
# CI runs this short one through make test. See docs/testing.md, "The soak".
SOAK_DURATION ?= 3m
SOAK_SEED ?= 1
soak: binaries
	cd e2e && $(GO) run ./cmd/soak -duration $(SOAK_DURATION) -seed $(SOAK_SEED)

# images builds Herald's image (controller, speaker, cloud-controller-manager) from
# source without Docker, reproducibly (SOURCE_DATE_EPOCH, default the commit's time),
# for IMAGE_PLATFORMS, as an OCI image layout in _output/images/herald tagged
# VERSION. push copies it to $(REGISTRY)/herald:$(VERSION). See docs/install.md.
VERSION ?= v0.1.0
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
images:
	cd e2e && $(GO) run ./cmd/images -version $(VERSION) -platforms $(IMAGE_PLATFORMS)

push:
	@[ -n "$(REGISTRY)" ] || { echo "make push: set REGISTRY, for example make push REGISTRY=registry.example/team" >&2; exit 1; }
	$(MAKE) images
	cd e2e && $(GO) run ./cmd/images -push $(REGISTRY)/herald:$(VERSION)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./ipam/...

# lab brings the product up end to end in network namespaces and leaves it running
# (root needed); lab-down removes it. See README.md, "The lab". It checks the machine
# first (root here, before Go compiles anything; the rest in `lab up`), then installs
# the missing Debian packages while it builds the missing control-plane binaries.
lab:
	@[ "$$(id -u)" = 0 ] || { echo "make lab: not root: the lab creates network namespaces and installs Debian packages; run sudo make lab" >&2; exit 1; }
	@echo "make lab: compiling the lab command"
	cd e2e && $(GO) run ./cmd/lab up

# lab-pods runs Herald as real pods (deploy/default on nodes with containerd and a
# kubelet) in the foreground until Ctrl-C; NODES=n for more nodes.
NODES ?= 1
lab-pods:
	@[ "$$(id -u)" = 0 ] || { echo "make lab-pods: not root: the lab creates network namespaces, cgroups and installs Debian packages; run sudo make lab-pods" >&2; exit 1; }
	@echo "make lab-pods: compiling the lab command"
	cd e2e && $(GO) run ./cmd/lab pods -nodes $(NODES)

# lab-down uses the copy of the lab command the running lab keeps, when there is one.
lab-down:
	if [ -x /run/herald-lab/herald-lab ]; then /run/herald-lab/herald-lab down; else cd e2e && $(GO) run ./cmd/lab down; fi
