#!/usr/bin/env bash
# Builds the project image (one image for the operator and all workloads) offline from the repo's
# Dockerfile and imports it into the local cluster's containerd (namespace k8s.io) with its tag.
#   IMAGE       tag to build (default localhost/mlops-operator:dev; `make image` passes the git describe)
#   BASE_IMAGE  default localhost/bookworm-python:3.11, built by hack/build-base-image.sh when missing;
#               on a normal Docker host use BASE_IMAGE=python:3.11-slim
#   NO_IMPORT=1 build only
# Steps: wheels of every dependency on the host (cached per dependency set in
# /var/cache/mlops-operator/wheels/<hash>; the only step that uses the network), then
# `docker build --network none`, then `docker save | ctr import`. Cheap when nothing changed: the
# source hash is stored as an image label in docker and in containerd, and both steps are skipped.
# Also makes sure the sandbox image localhost/pause:local is in the cluster's containerd.
# Prints the image name on stdout (last line).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/cluster/lib.sh"
cd "$REPO"
IMAGE=${IMAGE:-localhost/mlops-operator:dev}
BASE_IMAGE=${BASE_IMAGE:-localhost/bookworm-python:3.11}
DOCKER=/usr/bin/docker; [ -x "$DOCKER" ] || DOCKER=docker
T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
PY=$REPO/.venv/bin/python; [ -x "$PY" ] || PY=python3

# one build at a time (parallel test sessions share build/wheels and the tag)
exec 8>/run/mlops-image.lock
flock -w 1800 8 || die "another hack/image.sh holds /run/mlops-image.lock"
"$DOCKER" info >/dev/null 2>&1 || die "docker daemon not reachable: run hack/install-prereqs.sh"
case "$BASE_IMAGE" in localhost/bookworm-python:*) "$HERE/build-base-image.sh" "$BASE_IMAGE" ;; esac

# --- 1. dependency wheels, cached per dependency set -----------------------------------------------
REQS=$("$PY" - <<'EOF'
import tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(sorted(tomllib.load(f)["project"]["dependencies"])))
EOF
)
PYTAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
DEPHASH=$(printf '%s\n%s\n' "$PYTAG" "$REQS" | sha256sum | cut -c1-16)
WHEELS=$CACHE/wheels/$DEPHASH
if [ ! -f "$WHEELS/.complete" ]; then
  log "pip wheel: dependencies -> $WHEELS"
  rm -rf "$WHEELS.tmp"; mkdir -p "$WHEELS.tmp"
  printf '%s\n' "$REQS" >"$WHEELS.tmp/requirements.txt"
  "$PY" -m pip wheel -q --disable-pip-version-check --wheel-dir "$WHEELS.tmp" \
    -r "$WHEELS.tmp/requirements.txt" pip "setuptools>=68" wheel >"$WHEELS.tmp/pip.log" 2>&1 ||
    { grep -v "is ignored" "$WHEELS.tmp/pip.log" | tail -20 >&2; die "pip wheel failed"; }
  touch "$WHEELS.tmp/.complete"
  rm -rf "$WHEELS"; mv "$WHEELS.tmp" "$WHEELS"
fi
rm -rf build/wheels; mkdir -p build
cp -al "$WHEELS" build/wheels 2>/dev/null || cp -a "$WHEELS" build/wheels

# --- 2. build unless the same sources were built already ------------------------------------------
SRCHASH=$( {
  echo "$BASE_IMAGE $("$DOCKER" image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true) $DEPHASH"
  find Dockerfile .dockerignore pyproject.toml README.md operator -type f \
    ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-16)
have=$("$DOCKER" image inspect -f '{{index .Config.Labels "mlops.dev/src-hash"}}' "$IMAGE" 2>/dev/null || true)
if [ "$have" = "$SRCHASH" ]; then
  log "$IMAGE is up to date (sources $SRCHASH)"
else
  log "docker build $IMAGE (base $BASE_IMAGE, --network none)"
  "$DOCKER" build -q --network none --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --label "mlops.dev/src-hash=$SRCHASH" -t "$IMAGE" . >/dev/null
  "$DOCKER" run --rm --network none "$IMAGE" --help >/dev/null || die "smoke test of $IMAGE failed"
  "$DOCKER" run --rm --network none --entrypoint python "$IMAGE" -c 'import mlops_operator, os; assert os.getuid() == 10001' ||
    die "smoke test of $IMAGE failed"
  # the previous build of this tag is now dangling: drop it (build-cache layers are kept)
  "$DOCKER" image prune -f --filter "label=mlops.dev/src-hash" >/dev/null 2>&1 || true
  log "built $IMAGE ($(elapsed)s)"
fi

# --- 3. into the cluster's containerd --------------------------------------------------------------
if [ -n "${NO_IMPORT:-}" ]; then echo "$IMAGE"; exit 0; fi
if ! ctr -a "$CTR_SOCK" version >/dev/null 2>&1; then
  log "cluster containerd not running ($CTR_SOCK): built only; run make cluster-up, then make image again"
  echo "$IMAGE"; exit 0
fi
"$HERE/cluster/pause-image.sh"
ctr_hash=$(ctr -a "$CTR_SOCK" -n k8s.io images ls "name==$IMAGE" 2>/dev/null |
  awk 'NR>1' | grep -o 'mlops.dev/src-hash=[0-9a-f]*' | cut -d= -f2 || true)
if [ "$ctr_hash" = "$SRCHASH" ]; then
  log "$IMAGE already in containerd"
else
  log "importing $IMAGE into containerd (k8s.io)"
  "$DOCKER" save "$IMAGE" | ctr -a "$CTR_SOCK" -n k8s.io images import - >/dev/null
  ctr -a "$CTR_SOCK" -n k8s.io images label "$IMAGE" "mlops.dev/src-hash=$SRCHASH" >/dev/null
  log "imported $IMAGE ($(elapsed)s)"
fi
echo "$IMAGE"
