#!/usr/bin/env bash
# `make demo`: the whole loop on a real cluster in one command.
# Brings up the local cluster (or uses $KUBECONFIG when it names a reachable cluster), builds and
# loads the image, installs the chart, then runs hack/demo_loop.py, which narrates the loop.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CACHE="${MLOPS_CACHE:-/var/cache/mlops-operator}"
KUBECTL="$CACHE/bin/kubectl"
HELM="$CACHE/bin/helm"
NAMESPACE="${DEMO_NAMESPACE:-mlops-demo}"
RELEASE_NS="${RELEASE_NAMESPACE:-mlops-system}"
IMAGE="${IMAGE:-localhost/mlops-operator:dev}"
t0=$(date +%s)
step() { printf '\n==> [%3ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

step "prerequisites (apt packages, docker, cluster binaries, venv)"
hack/install-prereqs.sh

if [ -n "${KUBECONFIG:-}" ] && [ "$KUBECONFIG" != "$REPO/.kube/config" ] && "$KUBECTL" get --raw=/readyz >/dev/null 2>&1; then
  step "using the cluster named by KUBECONFIG=$KUBECONFIG"
else
  step "local cluster up"
  hack/cluster-up.sh
  export KUBECONFIG="$REPO/.kube/config"
fi

step "image $IMAGE (build and import into the cluster's containerd)"
IMAGE="$IMAGE" hack/image.sh

step "helm upgrade --install mlops-operator (namespace $RELEASE_NS, watching $NAMESPACE and mlops-reaction)"
# A rerun starts the loop from scratch: the previous demo namespace goes first (its children with it).
"$KUBECTL" delete namespace "$NAMESPACE" --ignore-not-found --wait=true --timeout=180s >/dev/null
# Watching named namespaces keeps the demo's rights in Roles there (least privilege) and leaves
# other namespaces (the e2e tests') alone; the chart needs them to exist first.
for ns in "$RELEASE_NS" "$NAMESPACE" mlops-reaction; do
  "$KUBECTL" create namespace "$ns" --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
  "$KUBECTL" label namespace "$ns" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
done
"$KUBECTL" apply --server-side --force-conflicts -f charts/mlops-operator/crds >/dev/null
"$HELM" upgrade --install mlops-operator charts/mlops-operator -n "$RELEASE_NS" \
  --set image.repository="${IMAGE%:*}" --set-string image.tag="${IMAGE##*:}" \
  --set "operator.watchNamespaces={$NAMESPACE,mlops-reaction}" --wait --timeout 5m
"$KUBECTL" -n "$RELEASE_NS" rollout status deploy/mlops-operator --timeout=180s

step "the loop: SEA partitions -> v1 serves -> concept drift -> labels -> quality decays -> refresh -> v2 beats v1 -> serves -> NoNewData"
.venv/bin/python hack/demo_loop.py --namespace "$NAMESPACE" --image "$IMAGE" --json-out "$REPO/.kube/demo-report.json"

step "what the cluster shows"
"$KUBECTL" -n "$NAMESPACE" get datasets,models,driftmonitors -o wide
"$KUBECTL" -n "$NAMESPACE" get jobs,deployments,services,pods
.venv/bin/kubectl-mlops -n "$NAMESPACE" history sea-lr || true

cat <<TXT

Done in $(( $(date +%s) - t0 )) s. The cluster is still up. Poke at it:
  export KUBECONFIG=$KUBECONFIG
  $KUBECTL -n $NAMESPACE get models,datasets,driftmonitors
  .venv/bin/kubectl-mlops -n $NAMESPACE why model sea-lr
  .venv/bin/kubectl-mlops -n $NAMESPACE drift sea-lr
  .venv/bin/kubectl-mlops -n $NAMESPACE retrain sea-lr --reason "try it"
  curl -s http://\$($KUBECTL -n $NAMESPACE get svc sea-lr -o jsonpath='{.spec.clusterIP}')/v2/models/sea-lr
The full report: .kube/demo-report.json.   Tear down: make demo-down (cluster too: make cluster-down)
TXT
