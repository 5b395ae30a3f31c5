# Lighthouse: every entry point. `make help` lists them.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
PYTEST_ARGS ?=

##@ Main job
.PHONY: up down status
up: ## The product for real: cluster with a real node, images, operator from the chart, sample bridge running
	@hack/up.sh

down: ## Stop the cluster and its real node
	@hack/up.sh down

status: ## Show the cluster, the services and the sample bridge
	@hack/cluster.sh status; hack/services.sh status || true

##@ Tests
.PHONY: test test-unit test-integration test-e2e test-node bench
test: bootstrap ## make verify, then all tiers (unit, integration, e2e, node); starts what they need
	@hack/test.sh all $(PYTEST_ARGS)

test-unit: bootstrap-python ## Unit tier: pure functions, no servers
	@hack/test.sh unit $(PYTEST_ARGS)

test-integration: bootstrap ## Integration tier: real control plane, PostgreSQL, Redis, S3, FUSE
	@hack/test.sh integration $(PYTEST_ARGS)

test-e2e: bootstrap ## e2e tier: built images, installed chart
	@hack/test.sh e2e $(PYTEST_ARGS)

test-node: bootstrap ## node tier: pods run by the real node's kubelet (probes, DNS, FUSE, rollbacks, backups)
	@hack/test.sh node $(PYTEST_ARGS)

bench: bootstrap ## Run benchmarks/ and record figures in benchmarks/RESULTS.md
	@hack/bench.sh

##@ Environment
.PHONY: bootstrap bootstrap-python tools extra-tools cluster-up cluster-down services-up services-down
bootstrap: ## Install Debian packages, the virtualenv and the Go-built control plane (idempotent)
	@hack/bootstrap.sh all

bootstrap-python: ## Create or refresh .venv only
	@hack/bootstrap.sh python

tools: ## Build etcd, kube-*, kubectl, kwok, kwokctl, and the node's kubelet, kube-proxy, CoreDNS (cached)
	@hack/build-tools.sh >/dev/null && hack/build-node-tools.sh

extra-tools: ## Build helm and promtool from their pinned Go modules (cached)
	@hack/build-extra-tools.sh

cluster-up: ## Start the local control plane with the real node and kwok nodes (LIGHTHOUSE_CLUSTER_REAL_NODE=0: kwok only)
	@LIGHTHOUSE_CLUSTER_REAL_NODE=$${LIGHTHOUSE_CLUSTER_REAL_NODE-1} hack/cluster.sh up

cluster-down: ## Stop the local control plane and its real node
	@hack/cluster.sh down

services-up: ## Start PostgreSQL, Redis and the S3 server on loopback
	@hack/services.sh up

services-down: ## Stop PostgreSQL, Redis and the S3 server
	@hack/services.sh down

##@ Build and generate
.PHONY: images generate verify lint
images: ## Build the operator, bridge, PostgreSQL and Redis OCI images with buildah
	@hack/images.sh && hack/images.sh stores

generate: bootstrap-python ## Regenerate the CRD (and its chart copy) from the pydantic model
	@hack/update-generated.sh

verify: bootstrap-python ## Generated files in sync, ruff lint and format, import-linter contracts, mypy (CI runs it first)
	@hack/verify.sh

lint: bootstrap-python ## ruff, the import-linter contracts and mypy (both packages, not strict), without the generated-file check
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports --no-cache && $(VENV)/bin/mypy

##@ Help
.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)
