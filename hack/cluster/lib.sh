# Shared settings for hack/cluster-up.sh, hack/cluster-down.sh and hack/cluster/*.sh (sourced).
# Everything the cluster writes lives outside the repo:
#   $STATE  (/var/lib/mlops-cluster)       certs, etcd data, kubelet root, PV dirs   -> removed by down
#   $LOGS   (/var/log/mlops-cluster)       one log per component                     -> kept (truncated on up)
#   $RUN    (/run/mlops-cluster)           pid files                                 -> removed by down
#   $CTR_ROOT (/var/lib/containerd-k8s)    the cluster containerd's image store      -> KEPT (fast re-import)
#   $CACHE  (/var/cache/mlops-operator)    binaries built from Go modules, wheels   -> KEPT
REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CACHE=${MLOPS_CACHE:-/var/cache/mlops-operator}
BIN=$CACHE/bin
STATE=/var/lib/mlops-cluster
LOGS=/var/log/mlops-cluster
RUN=/run/mlops-cluster
PKI=$STATE/pki
CTR_NAME=k8s
CTR_ROOT=/var/lib/containerd-$CTR_NAME
CTR_STATE=/run/containerd-$CTR_NAME
CTR_SOCK=$CTR_STATE/containerd.sock
NODE_NAME=mlops-node
NODE_IP=10.88.0.1
POD_CIDR=10.88.0.0/16
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
API_PORT=6443
ETCD_CLIENT_PORT=12379   # not the default 2379: leaves that free for anything else on the machine
ETCD_PEER_PORT=12380
BRIDGE=cni0
CNI_NET=mlops-pods
KUBECONFIG_OUT=$REPO/.kube/config
SANDBOX_IMAGE=localhost/pause:local
STORAGE_CLASS=mlops-local
# kernel tunables the kubelet writes at start (saved by up, restored by down)
KUBELET_SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes"
# every component we start, in start order (down stops them in reverse)
COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy pv-provisioner)

log() { printf '[%s %s] %s\n' "$(basename "$0" .sh)" "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
require_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }
# seconds since the script that sourced this file started, for its progress lines
T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# a process that exited stays a zombie until PID 1 reaps it (slowly, on this machine): not alive
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$s" ] && [[ $s != Z* ]]; }

pid_of() { # component -> pid if alive
  local f=$RUN/$1.pid p
  [ -f "$f" ] || return 1
  p=$(cat "$f")
  [ -n "$p" ] && alive "$p" && echo "$p"
}

kubectl_admin() { "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }
