#!/usr/bin/env bash
# Builds kubectl-mlops without the ML stack: a wheel (pip install dist/kubectl_mlops-*.whl) and a krew
# archive with its manifest (kubectl krew install --manifest=dist/krew/mlops.yaml
# --archive=dist/krew/kubectl-mlops-<version>.tar.gz). Needs only python3 with setuptools and wheel.
# Output: dist/ (override with DIST=...).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DIST="${DIST:-$REPO/dist}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
# where the krew archive is published; the manifest's sha256 is of the archive built here
RELEASE_URL="${RELEASE_URL:-https://mlops-operator.example/releases/download}"  # as Chart.yaml: home
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/plugins/kubectl-mlops/pyproject.toml")"
stage="$(mktemp -d)"; trap 'rm -rf "$stage"' EXIT

# the modules the plugin imports, nothing else (tests/contract/test_plugin_dist.py runs it with the
# ML stack blocked)
src="$REPO/operator/mlops_operator" pkg="$stage/src/mlops_operator"
mkdir -p "$pkg"
cp "$src/__init__.py" "$src/py.typed" "$src/conditions.py" "$src/contracts.py" "$pkg/"
for sub in api kube plugin; do
  (cd "$src" && find "$sub" -name '*.py' -not -path '*/__pycache__/*') | while read -r f; do
    mkdir -p "$pkg/$(dirname "$f")"; cp "$src/$f" "$pkg/$f"
  done
done
cp "$REPO/plugins/kubectl-mlops/pyproject.toml" "$REPO/LICENSE" "$stage/"

mkdir -p "$DIST/krew"
"$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$DIST" "$stage"

# krew: the package beside a launcher that finds it through krew's symlink
archive="kubectl-mlops-v$VERSION.tar.gz" root="$stage/krew"
mkdir -p "$root/lib"
cp -r "$stage/src/mlops_operator" "$root/lib/"
cp "$REPO/LICENSE" "$root/"
cat > "$root/kubectl-mlops" <<'SH'
#!/bin/sh
# kubectl mlops (krew): needs python3 (3.11+) with pydantic, PyYAML and kubernetes.
here="$(dirname "$(readlink -f "$0")")"
PYTHONPATH="$here/lib${PYTHONPATH:+:$PYTHONPATH}" exec "${KUBECTL_MLOPS_PYTHON:-python3}" -m mlops_operator.plugin "$@"
SH
chmod 0755 "$root/kubectl-mlops"
# reproducible: fixed owner, order and times, so the sha256 only moves with the content
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --exclude=__pycache__ \
  -C "$root" -cf - . | gzip -n > "$DIST/krew/$archive"
sha="$(sha256sum "$DIST/krew/$archive" | cut -d' ' -f1)"
platforms=""
for os in linux darwin; do
  for arch in amd64 arm64; do
    platforms+="
  - selector:
      matchLabels:
        os: $os
        arch: $arch
    uri: $RELEASE_URL/v$VERSION/$archive
    sha256: $sha
    bin: kubectl-mlops"
  done
done
cat > "$DIST/krew/mlops.yaml" <<YAML
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: mlops
spec:
  version: v$VERSION
  homepage: https://mlops-operator.example/
  shortDescription: Inspect and steer ML Datasets, Models and DriftMonitors
  description: |
    kubectl mlops shows the Datasets, Models and DriftMonitors of mlops-operator (mlops.dev):
    status, a Model's version history, drift scores, and why a resource is not ready. It approves,
    rejects, retrains and rolls back Models by patching the resources themselves, so GitOps sees
    every change.
  caveats: |
    The plugin is Python: it needs python3 (3.11 or later) with its three libraries:
      python3 -m pip install "pydantic>=2.10,<3" "PyYAML>=6" "kubernetes>=37"
    (or pip install the kubectl-mlops wheel, which brings them). KUBECTL_MLOPS_PYTHON names
    another interpreter.
  platforms:$platforms
YAML
echo "$DIST/$(cd "$DIST" && ls kubectl_mlops-"$VERSION"-*.whl)"
echo "$DIST/krew/$archive"
echo "$DIST/krew/mlops.yaml"
