#!/usr/bin/env bash
# Builds localhost/pause:local (the pod sandbox image) from pause.c as an OCI archive, without docker
# or a registry, caches it in $CACHE/images, and imports it into the cluster containerd (ns k8s.io)
# unless it is there already. Usage: hack/cluster/pause-image.sh [--no-import]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
OUT=$CACHE/images/pause-local-$(sha256sum "$HERE/pause.c" | cut -c1-12).tar
if [ ! -s "$OUT" ]; then
  W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
  mkdir -p "$W/root" "$W/oci/blobs/sha256" "$(dirname "$OUT")"
  gcc -static -Os -s -o "$W/root/pause" "$HERE/pause.c"
  "$W/root/pause" -v >/dev/null
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$W/root" -cf "$W/layer.tar" pause
  blob() { # file mediatype -> prints descriptor json, stores blob
    local d s
    d=$(sha256sum "$1" | cut -d' ' -f1); s=$(stat -c %s "$1")
    cp "$1" "$W/oci/blobs/sha256/$d"
    printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$d" "$s"
  }
  layer=$(blob "$W/layer.tar" application/vnd.oci.image.layer.v1.tar)
  diffid=$(sha256sum "$W/layer.tar" | cut -d' ' -f1)
  arch=$(go env GOARCH 2>/dev/null || echo amd64)
  printf '{"architecture":"%s","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$arch" "$diffid" > "$W/config.json"
  config=$(blob "$W/config.json" application/vnd.oci.image.config.v1+json)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
    "$config" "$layer" > "$W/manifest.json"
  manifest=$(blob "$W/manifest.json" application/vnd.oci.image.manifest.v1+json)
  manifest=${manifest%\}}
  printf '{"schemaVersion":2,"manifests":[%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"local"}}]}' \
    "$manifest" "$SANDBOX_IMAGE" > "$W/oci/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$W/oci/oci-layout"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$W/oci" -cf "$OUT.tmp" .
  mv "$OUT.tmp" "$OUT"
  log "built $SANDBOX_IMAGE -> $OUT"
fi
[ "${1:-}" = --no-import ] && exit 0
if ! ctr -a "$CTR_SOCK" -n k8s.io images ls -q "name==$SANDBOX_IMAGE" | grep -qx "$SANDBOX_IMAGE"; then
  ctr -a "$CTR_SOCK" -n k8s.io images import --all-platforms "$OUT" >/dev/null
  log "imported $SANDBOX_IMAGE"
fi
