#!/usr/bin/env bash
# Builds the project image from the repo's Dockerfile and imports it into the local cluster's
# containerd (namespace k8s.io) with its tag.
#   IMAGE       tag to build (default localhost/mlops-operator:dev; `make image` passes the git describe)
#   TARGET      Dockerfile target: workload (default: the operator and every workload, one image) or
#               operator (the slim image with only what `mlops-operator run` imports)
#   BASE_IMAGE  default localhost/bookworm-python:3.11, built by hack/build-base-image.sh when missing
#               (it trusts this host's local CAs, e.g. a TLS-intercepting proxy's); on a normal Docker
#               host use the Dockerfile's default (python:3.11 slim bookworm, by digest)
#   WHEELS      index (default): a plain `docker build` in which pip reaches the package index itself
#               (--require-hashes from the lock); HTTP_PROXY, HTTPS_PROXY and NO_PROXY (either case)
#               are passed as build args when set. local: the offline path for a machine without
#               network in builds: the locked wheels (requirements/build.txt + runtime.txt, hash-checked,
#               for CPython 3.11 on x86_64 glibc <= 2.36 like the bookworm base) downloaded on the host,
#               cached per lock in /var/cache/mlops-operator/wheels/<hash>, then
#               `docker build --network none --build-arg WHEELS=local` (pip --no-index from them).
#   NO_IMPORT=1 build only
# Then `docker save | ctr import`. Cheap when nothing changed: the source hash (sources, lock, base
# image id, target, WHEELS) is stored as an image label in docker and in containerd, and both steps are
# skipped; a changed source rebuilds only the small app layers (docker's layer cache keeps the
# dependency layers while the lock and the base are the same).
# Also makes sure the sandbox image localhost/pause:local is in the cluster's containerd.
# Prints the image name on stdout (last line).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/cluster/lib.sh"
cd "$REPO"
IMAGE=${IMAGE:-localhost/mlops-operator:dev}
TARGET=${TARGET:-workload}
BASE_IMAGE=${BASE_IMAGE:-localhost/bookworm-python:3.11}
WHEELS_FROM=${WHEELS:-index}
case "$WHEELS_FROM" in index|local) ;; *) die "WHEELS must be index or local, not '$WHEELS_FROM'" ;; esac
DOCKER=/usr/bin/docker; [ -x "$DOCKER" ] || DOCKER=docker
PY=$REPO/.venv/bin/python; [ -x "$PY" ] || PY=python3

# one build at a time (parallel test sessions share build/wheels and the tag)
exec 8>/run/mlops-image.lock
flock -w 1800 8 || die "another hack/image.sh holds /run/mlops-image.lock"
"$DOCKER" info >/dev/null 2>&1 || die "docker daemon not reachable: run hack/install-prereqs.sh"
case "$BASE_IMAGE" in localhost/bookworm-python:*) "$HERE/build-base-image.sh" "$BASE_IMAGE" ;; esac

# --- 1. WHEELS=local: the locked wheels, cached per lock ---------------------------------------------
"$HERE/check-lock.sh" >/dev/null || die "requirements/ does not match pyproject.toml: run make lock"
LOCKS=(requirements/build.txt requirements/runtime.txt)   # operator.txt is a subset of runtime.txt
DEPHASH=$(cat "${LOCKS[@]}" | sha256sum | cut -c1-16)
# build/wheels is in the build context only for WHEELS=local (with index it would only bust the cache)
rm -rf build/wheels
if [ "$WHEELS_FROM" = local ]; then
  WHEELS=$CACHE/wheels/lock-$DEPHASH
  if [ ! -f "$WHEELS/.complete" ]; then
    log "pip download: the locked wheels -> $WHEELS"
    # the image's interpreter and libc, whatever the host's: CPython 3.11, manylinux up to glibc 2.36
    PLATFORMS=(); for v in $(seq 36 -1 17); do PLATFORMS+=(--platform "manylinux_2_${v}_x86_64"); done
    PLATFORMS+=(--platform manylinux2014_x86_64)
    rm -rf "$WHEELS.tmp"; mkdir -p "$WHEELS.tmp"
    "$PY" -m pip download -q --disable-pip-version-check --no-deps --require-hashes --only-binary :all: \
      --python-version 3.11 --implementation cp "${PLATFORMS[@]}" --dest "$WHEELS.tmp" \
      $(printf -- '-r %s ' "${LOCKS[@]}") >"$WHEELS.tmp/pip.log" 2>&1 ||
      { tail -20 "$WHEELS.tmp/pip.log" >&2; die "pip download failed"; }
    rm "$WHEELS.tmp/pip.log"
    touch "$WHEELS.tmp/.complete"
    rm -rf "$WHEELS"; mv "$WHEELS.tmp" "$WHEELS"
  fi
  mkdir -p build
  cp -al "$WHEELS" build/wheels 2>/dev/null || cp -a "$WHEELS" build/wheels
  BUILD_ARGS=(--network none --build-arg WHEELS=local)
else
  # Docker forwards these predefined args to RUN steps without an ARG line (and keeps them out of
  # the image's history)
  BUILD_ARGS=()
  for v in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
    [ -z "${!v:-}" ] || BUILD_ARGS+=(--build-arg "$v=${!v}")
  done
fi

# --- 2. build unless the same sources were built already ------------------------------------------
SRCHASH=$( {
  echo "$BASE_IMAGE $("$DOCKER" image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true) $DEPHASH $TARGET $WHEELS_FROM"
  find Dockerfile .dockerignore pyproject.toml README.md requirements operator -type f \
    ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-16)
have=$("$DOCKER" image inspect -f '{{index .Config.Labels "mlops.dev/src-hash"}}' "$IMAGE" 2>/dev/null || true)
if [ "$have" = "$SRCHASH" ]; then
  log "$IMAGE is up to date (sources $SRCHASH)"
else
  log "docker build $IMAGE (target $TARGET, base $BASE_IMAGE, wheels from $WHEELS_FROM)"
  "$DOCKER" build -q "${BUILD_ARGS[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --target "$TARGET" --label "mlops.dev/src-hash=$SRCHASH" -t "$IMAGE" . >/dev/null
  "$DOCKER" run --rm --network none "$IMAGE" --help >/dev/null || die "smoke test of $IMAGE failed"
  case "$TARGET" in
    operator) SMOKE='import mlops_operator.runner, mlops_operator.handlers, mlops_operator.reconcilers' ;;
    *) SMOKE='import mlops_operator.runner, mlops_operator.workloads.train, mlops_operator.workloads.serve, fsspec
fsspec.get_filesystem_class("az"); fsspec.get_filesystem_class("s3")  # the azure and s3 extras' ;;
  esac
  "$DOCKER" run --rm --network none --entrypoint python "$IMAGE" -c "import os; assert os.getuid() == 10001
$SMOKE" || die "smoke test of $IMAGE failed"
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
