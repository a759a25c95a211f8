#!/usr/bin/env bash
# Brings up a real single-node Kubernetes cluster on this machine, from the cached binaries
# (hack/build-binaries.sh): etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet on
# its own containerd instance, kube-proxy (iptables mode), a bridge CNI network on cni0 (10.88.0.0/16,
# node IP 10.88.0.1), and the StorageClass `mlops-local`.
# Idempotent: when the cluster is already up and healthy this only verifies it (a second or so);
# a half-up cluster is torn down (hack/cluster-down.sh) and brought up again.
# Writes the admin kubeconfig to <repo>/.kube/config and prints its path.
# Network rule: pods never route off the machine (no masquerade; LC-PODS drops pod -> non-pod in
# FORWARD), every server listens on loopback, on the bridge address 10.88.0.1, or inside pods.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/cluster/lib.sh"
require_root

# bounded wait: wait_for DESCRIPTION SECONDS COMMAND...
wait_for() {
  local desc=$1 secs=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then log "timed out after ${secs}s waiting for $desc"; return 1; fi
    sleep 0.5
  done
}

node_ready() {
  [ "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

write_kubeconfig() {
  mkdir -p "$(dirname "$KUBECONFIG_OUT")"
  install -m 0600 "$STATE/admin.kubeconfig" "$KUBECONFIG_OUT"
  echo "kubeconfig: $KUBECONFIG_OUT"
  echo "  export KUBECONFIG=$KUBECONFIG_OUT; $BIN/kubectl get nodes"
}

healthy() {
  local c
  for c in "${COMPONENTS[@]}"; do pid_of "$c" >/dev/null || return 1; done
  [ -f "$STATE/admin.kubeconfig" ] || return 1
  kubectl_admin get --raw /readyz --request-timeout=5s >/dev/null 2>&1 || return 1
  node_ready || return 1
  ip -4 addr show dev "$BRIDGE" 2>/dev/null | grep -q "inet $NODE_IP/" || return 1
  iptables -C FORWARD -j LC-PODS 2>/dev/null || return 1
}

# --- 0. binaries (a warm cache compiles nothing) ------------------------------------------------
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl crictl; do
  if [ ! -x "$BIN/$b" ]; then "$REPO/hack/build-binaries.sh"; break; fi
done
for b in containerd runc ctr iptables conntrack openssl gcc; do
  command -v "$b" >/dev/null || die "$b missing: run hack/install-prereqs.sh"
done
[ -x /usr/lib/cni/bridge ] || die "CNI plugins missing: run hack/install-prereqs.sh"

# one up or down at a time (tests, make targets and people may call them concurrently)
exec 9>/run/mlops-cluster.lock
flock -w 600 9 || die "another cluster-up/down holds /run/mlops-cluster.lock"

# --- 1. already up? ------------------------------------------------------------------------------
if healthy; then
  log "cluster already up and healthy ($(elapsed)s)"
  write_kubeconfig
  exit 0
fi
if compgen -G "$RUN/*.pid" >/dev/null || [ -d "$STATE" ] || ip link show "$BRIDGE" >/dev/null 2>&1; then
  log "cluster partially up or stale state: tearing down first"
  MLOPS_CLUSTER_LOCKED=1 "$HERE/cluster-down.sh"
fi

mkdir -p "$STATE" "$LOGS" "$RUN" "$STATE/cni/net.d" "$STATE/cni/networks" "$STATE/pv" "$STATE/kubelet" \
  "$STATE/pod-logs"
chmod 0755 "$STATE/pv"
for c in "${COMPONENTS[@]}"; do [ -f "$LOGS/$c.log" ] && mv -f "$LOGS/$c.log" "$LOGS/$c.log.prev"; done

render() { # template -> stdout
  sed -e "s#@CTR_ROOT@#$CTR_ROOT#g" -e "s#@CTR_STATE@#$CTR_STATE#g" -e "s#@CTR_SOCK@#$CTR_SOCK#g" \
      -e "s#@CNI_CONF_DIR@#$STATE/cni/net.d#g" -e "s#@SANDBOX_IMAGE@#$SANDBOX_IMAGE#g" \
      -e "s#@CNI_NET@#$CNI_NET#g" -e "s#@BRIDGE@#$BRIDGE#g" -e "s#@POD_CIDR@#$POD_CIDR#g" \
      -e "s#@NODE_IP@#$NODE_IP#g" -e "s#@NODE_NAME@#$NODE_NAME#g" -e "s#@STATE@#$STATE#g" \
      -e "s#@PKI@#$PKI#g" "$1"
}

# start NAME COMMAND... : detached, own session, pid file, log file
start() {
  local name=$1; shift
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$name.pid"
}
fail() { log "ERROR: $1 (last lines of $LOGS/$2.log follow)"; tail -25 "$LOGS/$2.log" >&2 || true; exit 1; }

# --- 2. certificates and kubeconfigs -------------------------------------------------------------
"$HERE/cluster/pki.sh"
echo "nameserver 127.0.0.1" >"$STATE/pod-resolv.conf"
log "pki ready ($(elapsed)s)"

# --- 3. host network: bridge with the node address, forwarding rules ------------------------------
sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
ip -4 addr show dev "$BRIDGE" | grep -q "inet $NODE_IP/" || ip addr add "$NODE_IP/16" dev "$BRIDGE"
ip link set "$BRIDGE" up
iptables -N LC-PODS 2>/dev/null || iptables -F LC-PODS
iptables -A LC-PODS -s "$POD_CIDR" -d "$POD_CIDR" -j ACCEPT
iptables -A LC-PODS -s "$POD_CIDR" -j DROP
iptables -A LC-PODS -d "$POD_CIDR" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
iptables -C FORWARD -j LC-PODS 2>/dev/null || iptables -I FORWARD 1 -j LC-PODS
render "$HERE/cluster/cni.conflist.in" >"$STATE/cni/net.d/10-$CNI_NET.conflist"

# --- 4. containerd (own instance) + sandbox image ------------------------------------------------
mkdir -p "$CTR_ROOT" "$CTR_STATE"
render "$HERE/cluster/containerd.toml.in" >"$STATE/containerd.toml"
start containerd containerd --config "$STATE/containerd.toml"
wait_for containerd 30 ctr -a "$CTR_SOCK" version || fail "containerd did not start" containerd
"$HERE/cluster/pause-image.sh"
log "containerd up ($(elapsed)s)"

# --- 5. etcd -------------------------------------------------------------------------------------
start etcd "$BIN/etcd" --name mlops --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "mlops=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
  --unsafe-no-fsync --snapshot-count 10000 --log-level warn
wait_for etcd 30 curl -sf --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" || fail "etcd did not start" etcd
log "etcd up ($(elapsed)s)"

# --- 6. kube-apiserver ---------------------------------------------------------------------------
start kube-apiserver "$BIN/kube-apiserver" \
  --advertise-address="$NODE_IP" --bind-address="$NODE_IP" --secure-port="$API_PORT" \
  --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --service-cluster-ip-range="$SERVICE_CIDR" --service-node-port-range=30000-32767 \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true --anonymous-auth=true \
  --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --profiling=false --event-ttl=1h --v=1
wait_for kube-apiserver 90 kubectl_admin get --raw /readyz --request-timeout=3s || fail "kube-apiserver not ready" kube-apiserver
log "kube-apiserver ready ($(elapsed)s)"

# --- 7. controller-manager, scheduler ------------------------------------------------------------
start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$STATE/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
  --controllers='*' --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --allocate-node-cidrs=false --service-cluster-ip-range="$SERVICE_CIDR" \
  --profiling=false --v=1
start kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$STATE/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --profiling=false --v=1

# --- 8. kubelet, kube-proxy ----------------------------------------------------------------------
# the kubelet sets these kernel tunables (protectKernelDefaults: false); down restores them
[ -f "$STATE/sysctl.orig" ] || for k in $KUBELET_SYSCTLS; do echo "$k=$(sysctl -n "$k")"; done >"$STATE/sysctl.orig"
render "$HERE/cluster/kubelet-config.yaml.in" >"$STATE/kubelet-config.yaml"
render "$HERE/cluster/kube-proxy-config.yaml.in" >"$STATE/kube-proxy-config.yaml"
start_kubelet() {
  start kubelet "$BIN/kubelet" --config="$STATE/kubelet-config.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
    --root-dir="$STATE/kubelet" --node-ip="$NODE_IP" --hostname-override="$NODE_NAME" --v=1
}
# Ready, or the kubelet exited (then waiting longer is pointless)
node_ready_or_kubelet_gone() { node_ready || ! pid_of kubelet >/dev/null; }
start_kubelet
start kube-proxy "$BIN/kube-proxy" --config="$STATE/kube-proxy-config.yaml" --v=1

# The v1.34 kubelet can die of a Go runtime fatal ("concurrent map iteration and map write" in
# GetCapacity, seen while registering the node right after a restart): a fatal is not recoverable
# in-process, and a fresh kubelet registers cleanly, so restart it (at most twice) instead of failing.
for attempt in 1 2 3; do
  wait_for "node $NODE_NAME Ready" 120 node_ready_or_kubelet_gone || fail "node did not become Ready" kubelet
  node_ready && break
  [ "$attempt" -lt 3 ] || fail "the kubelet exited $attempt times before the node became Ready" kubelet
  log "kubelet exited before the node became Ready (attempt $attempt): restarting it"
  tail -3 "$LOGS/kubelet.log" >&2 || true
  start_kubelet
done
log "node Ready ($(elapsed)s)"

# --- 9. storage, default service account, forwarding rule order -----------------------------------
start pv-provisioner python3 "$HERE/cluster/pv-provisioner.py" "$STATE"
kubectl_admin apply -f "$HERE/cluster/storage.yaml" >/dev/null
wait_for "default ServiceAccount" 60 kubectl_admin -n default get serviceaccount default || fail "no default ServiceAccount" kube-controller-manager
wait_for "kube-proxy rules" 60 iptables -t nat -S KUBE-SERVICES || fail "kube-proxy did not sync" kube-proxy
# kube-proxy prepends its FORWARD jumps; LC-PODS (pod -> non-pod DROP) must come first.
iptables -D FORWARD -j LC-PODS && iptables -I FORWARD 1 -j LC-PODS
for c in "${COMPONENTS[@]}"; do pid_of "$c" >/dev/null || fail "$c exited" "$c"; done

log "cluster up in $(elapsed)s"
write_kubeconfig
