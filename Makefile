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
	$(PY) manifests/sync-base.py

check-crds: venv
	$(PY) -m mlops_operator.api.crdgen --check

lint: venv
	$(VENV)/bin/ruff check operator tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# Every test: unit, component, integration (real kube-apiserver), e2e (real local cluster).
test: venv lint
	IMAGE=$(IMAGE) $(VENV)/bin/pytest tests -m "not slow or slow" -p no:cacheprovider

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

# Side-by-side benchmarks (each writes its results JSON and README table; see benchmarks/*/README.md).
bench: venv
	benchmarks/serving/run.sh
	$(PY) benchmarks/drift/run.py && $(PY) benchmarks/drift/readme.py
	$(PY) benchmarks/training/bench_profile_train.py
	$(PY) benchmarks/loop/reaction.py
