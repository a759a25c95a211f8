#!/usr/bin/env bash
# Removes what `make demo` installed; leaves the cluster up (make cluster-down removes it).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${MLOPS_CACHE:-/var/cache/mlops-operator}"
export KUBECONFIG="${KUBECONFIG:-$(pwd)/.kube/config}"
"$CACHE/bin/kubectl" delete namespace "${DEMO_NAMESPACE:-mlops-demo}" mlops-reaction --ignore-not-found --wait=true --timeout=180s
"$CACHE/bin/helm" uninstall mlops-operator -n "${RELEASE_NAMESPACE:-mlops-system}" --wait 2>/dev/null || true
"$CACHE/bin/kubectl" delete namespace "${RELEASE_NAMESPACE:-mlops-system}" --ignore-not-found --wait=true --timeout=180s
echo "demo removed (the CRDs and the cluster stay; make cluster-down removes the cluster)"
