#!/usr/bin/env bash
# Regenerates the hash-pinned lock files (`make lock`) from pyproject.toml, for CPython 3.11 on x86_64
# Linux (manylinux_2_28: Debian bookworm, the python:3.11-slim-bookworm image, this machine), wheels only:
#   requirements/build.txt     pip + the build backend (pyproject's [build-system] requires)
#   requirements/dev.txt       [project] dependencies + the azure, s3 and dev extras: make venv, CI
#   requirements/runtime.txt   [project] dependencies + the azure and s3 extras: the image (az://, s3://)
#   requirements/operator.txt  requirements/operator.in: the image's slim `operator` target
# runtime.txt is constrained to dev.txt's versions and operator.txt to runtime.txt's, so the image runs
# exactly what the tests ran. Existing pins are kept unless pyproject.toml needs otherwise;
# UPGRADE=1 moves every pin to the newest allowed release, UPGRADE_PACKAGE="a b" only those.
# The generator, uv $UV_VERSION, is installed into a throwaway venv. hack/check-lock.sh (no network)
# fails when the lock no longer matches pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
PY_VERSION=3.11
PLATFORM=x86_64-manylinux_2_28
log() { printf '[lock] %s\n' "$*" >&2; }
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

W=$(mktemp -d /tmp/mlops-lock.XXXXXX)
trap 'rm -rf "$W"' EXIT
log "uv $UV_VERSION into a throwaway venv"
"$PYTHON" -m venv "$W/tools"
"$W/tools/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
UV=$W/tools/bin/uv

ARGS=(--generate-hashes --python-version "$PY_VERSION" --python-platform "$PLATFORM" --no-build
      --system-certs --quiet --custom-compile-command "make lock")
[ -n "${UPGRADE:-}" ] && ARGS+=(--upgrade)
for p in ${UPGRADE_PACKAGE:-}; do ARGS+=(--upgrade-package "$p"); done

mkdir -p requirements
FP=$(hack/check-lock.sh --fingerprint)
HEADER="# Locked by \`make lock\` (hack/lock.sh: uv $UV_VERSION pip compile --generate-hashes --no-build
# --python-version $PY_VERSION --python-platform $PLATFORM). Do not edit; install with --require-hashes.
# inputs-sha256: $FP"

compile() {  # compile OUT INPUT... [uv args]
  local out=$1; shift
  # uv prefers the pins already in the output file; our header lines are comments to it
  "$UV" pip compile "$@" "${ARGS[@]}" -o "$W/$out"
  { printf '%s\n' "$HEADER"; cat "$W/$out"; } >"requirements/$out.tmp"
  mv "requirements/$out.tmp" "requirements/$out"
  log "requirements/$out: $(grep -cE '^[A-Za-z0-9]' "requirements/$out") packages"
}
# seed uv's preferences with the current pins (it reads them from the output file)
for f in build dev runtime operator; do [ -f "requirements/$f.txt" ] && cp "requirements/$f.txt" "$W/$f.txt"; done

# build.txt: pip and pyproject's [build-system] requires (read from stdin, so the annotations say `-r -`)
"$PYTHON" -c 'import tomllib; print("\n".join(["pip", *tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]]))' |
  compile build.txt -
compile dev.txt pyproject.toml --extra dev --extra azure --extra s3
compile runtime.txt pyproject.toml --extra azure --extra s3 -c requirements/dev.txt
compile operator.txt requirements/operator.in -c requirements/runtime.txt
hack/check-lock.sh
