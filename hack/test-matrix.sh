#!/usr/bin/env bash
# Runs the integration and e2e suites on each Kubernetes minor in K8S_VERSIONS, one local cluster at a
# time, and prints one result line per version (the README's support matrix is written from them).
#   MATRIX_TESTS  default "tests/integration tests/e2e"
#   K8S_VERSIONS  default "v1.32.9 v1.35.4" (make test covers the default, v1.34.4). v1.32.9: the newest
#                 1.32 patch whose staging modules are all served by the Go module proxy here
# Each version gets its own binary cache, $MLOPS_CACHE-<minor> (etcd, helm and crictl hard-linked
# from the default cache, so only Kubernetes itself is compiled: 15-40 min cold on 2 cores, nothing
# warm). The default cluster is torn down first and left down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSIONS=${K8S_VERSIONS:-v1.32.9 v1.35.4}
TESTS=${MATRIX_TESTS:-tests/integration tests/e2e}  # or some of them, e.g. to re-run a fixed test
BASE_CACHE=${MLOPS_CACHE:-/var/cache/mlops-operator}
RESULTS=${MATRIX_RESULTS:-build/test-matrix.txt}
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"
log() { printf '[test-matrix %s] %s\n' "$(date +%T)" "$*" >&2; }

for version in $VERSIONS; do
  minor=${version%.*}
  cache="$BASE_CACHE-$minor"
  mkdir -p "$cache"
  for shared in etcd helm crictl prometheus azurite wheels; do
    [ -e "$BASE_CACHE/$shared" ] && [ ! -e "$cache/$shared" ] && cp -al "$BASE_CACHE/$shared" "$cache/"
  done
  log "$version: binaries ($cache)"
  MLOPS_CACHE=$cache K8S_VERSION=$version hack/build-binaries.sh
  hack/cluster-down.sh
  started=$(date +%s)
  rc=0
  MLOPS_CACHE=$cache hack/cluster-up.sh || rc=$?
  if [ "$rc" = 0 ]; then
    # shellcheck disable=SC2086  # TESTS is a list of paths
    MLOPS_CACHE=$cache .venv/bin/pytest $TESTS -m "not slow or slow" -p no:cacheprovider -q \
      | tee "build/test-matrix-$minor.log" || rc=$?
  fi
  summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed)' "build/test-matrix-$minor.log" 2>/dev/null | tail -n1 || true)
  line="$(date -u +%F) $version rc=$rc $(( $(date +%s) - started ))s ${summary:-cluster-up failed}"
  echo "$line" | tee -a "$RESULTS"
  hack/cluster-down.sh
done
cat "$RESULTS"
! grep -q 'rc=[1-9]' "$RESULTS"
