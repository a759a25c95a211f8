#!/usr/bin/env bash
# Installs everything the tests and the local cluster need on a fresh Debian 12 machine, and is
# fast (a few seconds) when everything is already there. Called by .ci/run before `make test`.
#   1. Debian packages (docker, containerd, runc, CNI plugins, debootstrap, iptables, chromium...)
#   2. dockerd running (no systemd here: started in the background with setsid)
#   3. cluster binaries built from Go modules into the cache (hack/build-binaries.sh)
#   4. the project venv (make venv: exactly requirements/dev.txt, pip --require-hashes, wheels only; it
#      stops first when hack/check-lock.sh finds the lock out of date with pyproject.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[install-prereqs] %s\n' "$*" >&2; }
t0=$(date +%s)

# --- 1. Debian packages -------------------------------------------------------------------------
# command -> package; a package is installed only when its command is missing.
declare -A NEED=(
  [dockerd]=docker.io [containerd]=containerd [runc]=runc [debootstrap]=debootstrap
  [conntrack]=conntrack [socat]=socat [ebtables]=ebtables [ethtool]=ethtool
  [iptables]=iptables [ip]=iproute2 [openssl]=openssl [gcc]=gcc [curl]=curl
  [chromium]=chromium [chromedriver]=chromium-driver [nsenter]=util-linux [jq]=jq
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
[ -e /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
# static libc for the pause binary
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || missing+=(libc6-dev)
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/install-prereqs-apt.log 2>&1 ||
    { tail -30 /tmp/install-prereqs-apt.log >&2; exit 1; }
fi
# Debian's docker.io starts nothing without systemd; the policy-rc.d path may leave the
# first containerd stopped too. We never need the system containerd (the cluster runs its own).

# --- 2. dockerd ---------------------------------------------------------------------------------
# Prefer Debian's docker client (/usr/bin/docker, same version as the daemon).
DOCKER=/usr/bin/docker; [ -x "$DOCKER" ] || DOCKER=docker
if ! "$DOCKER" info >/dev/null 2>&1; then
  log "starting dockerd (background, log /var/log/dockerd.log)"
  mkdir -p /var/log
  # dockerd starts its own containerd (it has no --containerd flag set) when none is given.
  setsid dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
  echo $! >/run/dockerd-mlops.pid
  for _ in $(seq 120); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 0.5; done
  "$DOCKER" info >/dev/null 2>&1 || { tail -30 /var/log/dockerd.log >&2; log "dockerd did not come up"; exit 1; }
fi

# Azurite, Microsoft's Azure Storage emulator (an npm package), for the az:// store tests on 127.0.0.1.
AZURITE_VERSION=3.35.0
AZURITE_DIR="${MLOPS_CACHE:-/var/cache/mlops-operator}/azurite/$AZURITE_VERSION"
install_azurite() {
  [ -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ] && return 0
  command -v npm >/dev/null 2>&1 || { log "npm not found: the az:// store tests will skip"; return 0; }
  mkdir -p "$AZURITE_DIR"
  npm install --silent --no-audit --no-fund --prefix "$AZURITE_DIR" "azurite@$AZURITE_VERSION"
}

# --- 3+4. in parallel: cluster binaries (CPU-bound Go builds, cached by version: a warm cache
# compiles nothing) and, network-bound, the project venv (from the lock) and the offline base image
hack/build-binaries.sh >/tmp/install-prereqs-binaries.log 2>&1 &
bins=$!
rc=0
{ make -s venv && hack/build-base-image.sh && install_azurite; } >/tmp/install-prereqs-venv.log 2>&1 || rc=$?
if [ "$rc" != 0 ]; then tail -30 /tmp/install-prereqs-venv.log >&2; log "venv/base image failed"; fi
if ! wait "$bins"; then tail -30 /tmp/install-prereqs-binaries.log >&2; log "hack/build-binaries.sh failed"; exit 1; fi
grep '^\[build-binaries\]' /tmp/install-prereqs-binaries.log >&2 || true
[ "$rc" = 0 ] || exit "$rc"

log "done in $(( $(date +%s) - t0 ))s"
