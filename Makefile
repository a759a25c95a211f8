# mlops-operator: every entry point a developer or CI needs.
SHELL := /bin/bash
PY ?= .venv/bin/python
VENV := .venv
export KUBECONFIG ?= $(CURDIR)/.kube/config
IMAGE_TAG ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
IMAGE ?= localhost/mlops-operator:$(IMAGE_TAG)

.PHONY: venv lock check-lock crds check-crds lint typecheck unit test test-fast test-matrix cluster-up cluster-down image demo demo-down bench bench-scale binaries

# The venv is exactly the lock (requirements/dev.txt: runtime deps with the azure and s3 extras, plus the
# dev tools), hash-checked and wheels only, then the project itself, editable, without its deps.
# hack/check-lock.sh stops here when pyproject.toml changed since the last `make lock`.
# Packages installed by hand stay: `rm -rf .venv && make venv` for a venv that is the lock and nothing else.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml requirements/build.txt requirements/dev.txt
	hack/check-lock.sh
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and f"make venv: the lock is for Python 3.11 and $(PYTHON) is {sys.version.split()[0]}: make venv PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --require-hashes --only-binary :all: -r requirements/build.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --require-hashes --only-binary :all: -r requirements/dev.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Regenerate requirements/*.txt from pyproject.toml (uv in a throwaway venv; needs the package index).
# UPGRADE=1 moves every pin to the newest allowed release, UPGRADE_PACKAGE="name ..." only those.
lock:
	hack/lock.sh

# The lock matches pyproject.toml (no network).
check-lock:
	hack/check-lock.sh

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

# Integration + e2e on the other Kubernetes minors we claim (README support matrix); long: its own target.
test-matrix: venv
	IMAGE=$(IMAGE) hack/test-matrix.sh

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
# Each refuses to record results unless the machine is quiet (benchmarks/quiet.py: 1-min load <= 1.0).
bench: venv binaries
	benchmarks/serving/run.sh
	benchmarks/drift/run.sh
	$(PY) benchmarks/quiet.py --wait 900 && $(PY) benchmarks/training/bench_profile_train.py
	$(PY) benchmarks/quiet.py --wait 900 && $(PY) benchmarks/loop/reaction.py   # needs make demo's cluster

# 1, 100 and 1,000 Models on a real kube-apiserver beside a minimal kopf operator (hours: its own target).
bench-scale: venv binaries
	benchmarks/scale/run.sh
