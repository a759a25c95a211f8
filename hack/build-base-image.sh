#!/usr/bin/env bash
# Builds the offline base image localhost/bookworm-python:3.11 (Debian bookworm + Debian's python3 and
# python3-venv, so `python3 -m venv` brings pip as on python:3.11-slim) with debootstrap from the Debian
# mirror apt already uses, and imports it into docker. Cached: does nothing when the docker image exists
# with this script's revision and the same local CAs (ENV MLOPS_BASE_REV; FORCE=1 rebuilds). ~40 s cold.
# The image trusts the CAs this host added to its own store (/usr/local/share/ca-certificates/*.crt,
# e.g. a TLS-intercepting egress proxy's CA) and points pip at the system bundle (PIP_CERT: the pip of
# the lock vendors its own certifi bundle), so a plain `docker build` reaches the package index from
# inside the build as pip on the host does. Only this machine's base gets them; nothing is committed.
# Usage: hack/build-base-image.sh [IMAGE]
set -euo pipefail
BASE=${1:-localhost/bookworm-python:3.11}
DOCKER=/usr/bin/docker; [ -x "$DOCKER" ] || DOCKER=docker
log() { printf '[build-base-image] %s\n' "$*" >&2; }
# bump when the rootfs changes: 2 = python3-venv (ensurepip), 3 = the host's local CAs + PIP_CERT
LOCAL_CAS=(/usr/local/share/ca-certificates/*.crt); [ -e "${LOCAL_CAS[0]}" ] || LOCAL_CAS=()
REV=3-$( (cat /dev/null "${LOCAL_CAS[@]}") | sha256sum | cut -c1-12)
if [ -z "${FORCE:-}" ] &&
   "$DOCKER" image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$BASE" 2>/dev/null | grep -qx "MLOPS_BASE_REV=$REV"; then
  exit 0
fi
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
W=$(mktemp -d /var/tmp/mlops-base.XXXXXX)
trap 'rm -rf "$W"' EXIT
R=$W/rootfs
log "debootstrap bookworm (minbase + python3, python3-venv) from $MIRROR"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$R" "$MIRROR" >"$W/debootstrap.log" 2>&1 ||
  { tail -20 "$W/debootstrap.log" >&2; exit 1; }
# apt lists, caches and logs are not needed in an image; debootstrap copied the host's resolv.conf
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/var/cache/apt/archives/*.deb \
       "$R"/var/log/*.log "$R"/var/log/apt/* "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/locale/*
: >"$R/etc/resolv.conf"
if [ ${#LOCAL_CAS[@]} -gt 0 ]; then
  log "trusting the host's local CAs: ${LOCAL_CAS[*]##*/}"
  cp "${LOCAL_CAS[@]}" "$R/usr/local/share/ca-certificates/"
  chroot "$R" update-ca-certificates >/dev/null
fi
chroot "$R" python3 -c 'import ensurepip, sys; print("python in rootfs:", sys.version.split()[0], "pip", ensurepip.version())' >&2
tar --numeric-owner -C "$R" -c . |
  "$DOCKER" import -c 'ENV LANG=C.UTF-8' -c "ENV MLOPS_BASE_REV=$REV" \
    -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' -c 'CMD ["python3"]' - "$BASE" >/dev/null
log "built $BASE"
