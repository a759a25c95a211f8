# mlops-operator: every entry point a developer or CI needs.
SHELL := /bin/bash
PY ?= .venv/bin/python
VENV := .venv
export KUBECONFIG ?= $(CURDIR)/.kube/config
IMAGE_TAG ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
IMAGE ?= localhost/mlops-operator:$(IMAGE_TAG)

.PHONY: venv crds check-crds lint typecheck unit test test-fast cluster-up cluster-down image demo demo-down bench binaries

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

binaries:
	hack/build-binaries.sh

crds: venv
	$(PY) -m mlops_operator.api.crdgen --write

check-crds: venv
	$(PY) -m mlops_operator.api.crdgen --check

lint: venv
	$(VENV)/bin/ruff check operator tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# Every test: unit, component, integration (real kube-apiserver), e2e (real local cluster).
test: venv lint
	$(VENV)/bin/pytest tests -m "not slow or slow" -p no:cacheprovider

# Fast loop while developing: no cluster.
test-fast: venv
	$(VENV)/bin/pytest tests -m "not e2e and not integration"

cluster-up: binaries
	hack/cluster-up.sh

cluster-down:
	hack/cluster-down.sh

image: venv
	IMAGE=$(IMAGE) hack/image.sh

demo: venv
	IMAGE=$(IMAGE) hack/demo.sh

demo-down:
	hack/demo-down.sh

bench: venv
	$(PY) -m benchmarks.run
