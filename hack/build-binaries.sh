#!/usr/bin/env bash
# Builds every cluster binary from Go modules into a cache outside the repo, keyed by version.
# A warm cache compiles nothing. Output: $MLOPS_CACHE/bin/<name> (symlinks to the versioned builds).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.19.5}"
CRICTL_VERSION="${CRICTL_VERSION:-v1.34.0}"
# Prometheus 3.x is published as Go module versions v0.3XY.Z (3.16.0 -> v0.316.0)
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
CACHE="${MLOPS_CACHE:-/var/cache/mlops-operator}"
export GOFLAGS="${GOFLAGS:--trimpath}"
export CGO_ENABLED=0

log() { printf '[build-binaries] %s\n' "$*" >&2; }
mkdir -p "$CACHE/bin" "$CACHE/src"

link() { ln -sfn "$1" "$CACHE/bin/$(basename "$1")"; }
# build durations, for docs/cluster.md: "<date> <what> <seconds>s" in $CACHE/build-times.log
T_START=$(date +%s)
timing() { local now; now=$(date +%s); echo "$(date -u +%FT%TZ) $1 $((now - T_START))s" >>"$CACHE/build-times.log"; T_START=$now; }

build_kubernetes() {
  local out="$CACHE/k8s/$K8S_VERSION" src="$CACHE/src/k8s-$K8S_VERSION"
  local bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
  local missing=0
  for b in "${bins[@]}"; do [ -x "$out/$b" ] || missing=1; done
  if [ "$missing" = 1 ]; then
    log "building kubernetes $K8S_VERSION (cold: several minutes)"
    mkdir -p "$src" "$out"
    local staging_minor="v0.${K8S_VERSION#v1.}"
    # k8s.io/kubernetes replaces its staging modules with local paths; a wrapper module
    # pins each of them to the matching published v0.x.y release instead.
    local gomod
    gomod=$(curl -fsSL "https://proxy.golang.org/k8s.io/kubernetes/@v/${K8S_VERSION}.mod")
    {
      echo "module mlops.dev/k8s-wrapper"
      echo
      echo "go 1.24"
      echo
      echo "require k8s.io/kubernetes ${K8S_VERSION}"
      echo
      echo "replace ("
      echo "$gomod" | sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/[a-z0-9-]*$#\t\1 => \1 '"$staging_minor"'#p'
      echo ")"
    } > "$src/go.mod"
    cat > "$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    (cd "$src" && go mod tidy -e >/dev/null 2>&1 || true; cd "$src" && go mod download k8s.io/kubernetes)
    local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
    local ld="-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=${K8S_VERSION}"
    # one `go build` for every missing binary: packages compile once and the links run in parallel
    local pkgs=() tmp="$out/.tmp"
    for b in "${bins[@]}"; do [ -x "$out/$b" ] || pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    log "  go build ${pkgs[*]##*/}"
    rm -rf "$tmp"; mkdir -p "$tmp"
    (cd "$src" && go build -tags tools -ldflags "$ld" -o "$tmp/" "${pkgs[@]}")
    for p in "${pkgs[@]}"; do mv "$tmp/${p##*/}" "$out/${p##*/}"; done
    rmdir "$tmp"
    timing "kubernetes $K8S_VERSION"
  fi
  for b in "${bins[@]}"; do link "$out/$b"; done
}

build_etcd() {
  local out="$CACHE/etcd/$ETCD_VERSION" src="$CACHE/src/etcd-$ETCD_VERSION"
  if [ ! -x "$out/etcd" ]; then
    log "building etcd $ETCD_VERSION"
    mkdir -p "$src" "$out"
    cat > "$src/main.go" <<'GO'
// etcd's own main lives in a module with local replaces; etcdmain is importable as is.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    printf 'module mlops.dev/etcd-wrapper\n\ngo 1.24\n' > "$src/go.mod"
    (cd "$src" && go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" && go mod tidy && go build -ldflags "-s -w" -o "$out/etcd.tmp" . && mv "$out/etcd.tmp" "$out/etcd")
    timing "etcd $ETCD_VERSION"
  fi
  link "$out/etcd"
}

build_go_install() { # name module version
  local name="$1" module="$2" version="$3" out="$CACHE/$1/$3"
  if [ ! -x "$out/$name" ]; then
    log "building $name $version"
    mkdir -p "$out"
    GOBIN="$out" go install -ldflags "-s -w" "$module@$version"
    timing "$name $version"
  fi
  link "$out/$name"
}

# prometheus and promtool only (the tests' scraper and rule checker): no UI assets, and of the
# service discoveries only file, http (always in) and kubernetes. Cold (empty Go caches, 2 loaded
# cores, load average 8-10): 15 min; warm: nothing to do.
build_prometheus() {
  local out="$CACHE/prometheus/$PROMETHEUS_VERSION" module=github.com/prometheus/prometheus
  local release="${PROMETHEUS_VERSION#v0.}"; release="3.${release:1:2}.${PROMETHEUS_VERSION##*.}"
  if [ ! -x "$out/prometheus" ] || [ ! -x "$out/promtool" ]; then
    log "building prometheus + promtool $PROMETHEUS_VERSION (prometheus $release)"
    mkdir -p "$out"
    GOBIN="$out" go install -tags remove_all_sd,enable_kubernetes_sd \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release -X github.com/prometheus/common/version.Branch=release" \
      "$module/cmd/prometheus@$PROMETHEUS_VERSION" "$module/cmd/promtool@$PROMETHEUS_VERSION"
    timing "prometheus $PROMETHEUS_VERSION"
  fi
  link "$out/prometheus"; link "$out/promtool"
}

# BINARIES picks a subset, e.g. BINARIES=kubernetes to compile another minor ahead of hack/test-matrix.sh
BINARIES="${BINARIES:-etcd kubernetes helm crictl prometheus}"
T_START=$(date +%s)
for binary in $BINARIES; do
  case "$binary" in
    etcd) build_etcd ;;
    kubernetes) build_kubernetes ;;
    helm) build_go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" ;;
    crictl) build_go_install crictl sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_VERSION" ;;
    prometheus) build_prometheus ;;
    *) log "unknown binary '$binary' in BINARIES"; exit 2 ;;
  esac
done
log "binaries ready in $CACHE/bin: $(ls "$CACHE/bin" | tr '\n' ' ')"
