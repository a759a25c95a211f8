#!/usr/bin/env bash
# Tears the local cluster down completely: every pod (through the CRI, so the CNI releases veths,
# IPs and netns), every process we started (by pid file, plus any shim of our containerd), mounts
# under the state dirs, iptables/nftables chains (LC-PODS, KUBE-*, CNI-*), kubepods cgroups, cni0,
# and the state in /var/lib/mlops-cluster (certs, etcd, kubelet root, PV data).
# KEPT: the binary cache (/var/cache/mlops-operator), containerd's image store
# (/var/lib/containerd-k8s: imported images survive, so the next up re-imports nothing), and the
# logs in /var/log/mlops-cluster. Idempotent; safe on a machine where nothing is up.
# Ends by running hack/cluster/check-clean.sh and fails if anything is left.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/cluster/lib.sh"
require_root

stop() { # component [grace seconds, default 1]: SIGTERM, then SIGKILL (all state is wiped anyway)
  local name=$1 grace=${2:-1} p i t
  p=$(pid_of "$name") || { rm -f "$RUN/$name.pid"; return 0; }
  t=$(date +%s.%N)
  kill -TERM "$p" 2>/dev/null
  for i in $(seq $((grace * 10))); do alive "$p" || break; sleep 0.1; done
  alive "$p" && { log "$name ($p) still running after ${grace}s: SIGKILL"; kill -KILL "$p" 2>/dev/null; }
  for i in $(seq 50); do alive "$p" || break; sleep 0.1; done
  [ -n "${DEBUG:-}" ] && log "stopped $name in $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
  rm -f "$RUN/$name.pid"
}

# one up or down at a time (tests, make targets and people may call them concurrently)
if [ -z "${MLOPS_CLUSTER_LOCKED:-}" ]; then
  exec 9>/run/mlops-cluster.lock
  flock -w 600 9 || die "another cluster-up/down holds /run/mlops-cluster.lock"
fi

# our components without (or with a stale) pid file: anything whose command line names the state dir
# or our containerd (e.g. left by an up that was interrupted)
strays() {
  local d cmd
  for d in /proc/[0-9]*; do
    [ "${d#/proc/}" = $$ ] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    case "$cmd" in *"$STATE"/*|*pv-provisioner.py*) echo "${d#/proc/}" ;; esac
  done
}

# 1. no new pods: stop the node agent and the controllers first
for c in pv-provisioner kubelet kube-scheduler kube-controller-manager; do stop "$c"; done
log "node agent and controllers stopped ($(elapsed)s)"

# 2. remove every pod sandbox through the CRI (CNI DEL: veth, IP, netns), while containerd runs
if [ -S "$CTR_SOCK" ] && ctr -a "$CTR_SOCK" version >/dev/null 2>&1; then
  CRICTL=("$BIN/crictl" --runtime-endpoint "unix://$CTR_SOCK" --image-endpoint "unix://$CTR_SOCK" --timeout 60s)
  if [ -x "$BIN/crictl" ]; then
    "${CRICTL[@]}" rmp --force --all >/dev/null 2>&1 || "${CRICTL[@]}" rmp --force --all >/dev/null 2>&1 || true
    "${CRICTL[@]}" rm --force --all >/dev/null 2>&1 || true
  fi
  # anything the CRI did not know about (e.g. ctr run): kill and delete its tasks and containers
  for id in $(ctr -a "$CTR_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr -a "$CTR_SOCK" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1
    ctr -a "$CTR_SOCK" -n k8s.io tasks delete "$id" >/dev/null 2>&1
  done
  for id in $(ctr -a "$CTR_SOCK" -n k8s.io containers ls -q 2>/dev/null); do
    ctr -a "$CTR_SOCK" -n k8s.io containers delete "$id" >/dev/null 2>&1
  done
fi
log "pods removed ($(elapsed)s)"
stop containerd 10
# shims of our containerd that outlived it (only if a pod could not be removed)
for d in /proc/[0-9]*; do
  cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
  case "$cmd" in *"-address $CTR_SOCK"*) log "killing stray shim ${d#/proc/}"; kill -KILL "${d#/proc/}" 2>/dev/null ;; esac
done
# containers whose shim is gone (kill what is still inside the kubepods cgroups)
for f in /sys/fs/cgroup/pids/kubepods /sys/fs/cgroup/memory/kubepods; do
  [ -d "$f" ] || continue
  find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | while read -r p; do
    [ -n "$p" ] && { log "killing stray pod process $p"; kill -KILL "$p" 2>/dev/null; }
  done
done

# 3. the rest of the control plane
for c in kube-proxy kube-apiserver etcd; do stop "$c"; done
pids=$(strays)
if [ -n "$pids" ]; then
  log "stopping stray cluster processes: $(echo $pids)"
  kill -TERM $pids 2>/dev/null; sleep 2
  pids=$(strays); [ -n "$pids" ] && kill -KILL $pids 2>/dev/null && sleep 0.5
fi
log "processes stopped ($(elapsed)s)"

# 4. mounts (deepest first), netns files the CNI left
umount_under() {
  local prefix=$1 mp
  awk '{print $5}' /proc/self/mountinfo | grep -E "^$prefix(/|$)" | sort -r | while read -r mp; do
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "cannot unmount $mp"
  done
}
umount_under "$STATE"
umount_under "$CTR_STATE"
umount_under "$CTR_ROOT"
for ns in /run/netns/cni-*; do
  [ -e "$ns" ] || continue
  umount "$ns" 2>/dev/null || umount -l "$ns" 2>/dev/null; rm -f "$ns"
done

# 5. iptables: drop jumps into our chains from any other chain, then flush and delete our chains
OURS='^(KUBE-|CNI-|LC-PODS)'
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for table in filter nat mangle raw; do
    rules=$("$ipt" -t "$table" -S 2>/dev/null) || continue
    # jumps from chains that are not ours (built-in chains, DOCKER-USER...)
    echo "$rules" | awk -v re="$OURS" '$1=="-A" && $2 !~ re && / -j / { for (i=1;i<=NF;i++) if ($i=="-j" && $(i+1) ~ re) { print; break } }' |
      while read -r rule; do
        eval "$ipt -t $table ${rule/-A /-D }" 2>/dev/null || true
      done
    chains=$(echo "$rules" | awk -v re="$OURS" '$1=="-N" && $2 ~ re {print $2}')
    for ch in $chains; do "$ipt" -t "$table" -F "$ch" 2>/dev/null; done
    for ch in $chains; do "$ipt" -t "$table" -X "$ch" 2>/dev/null; done
  done
done
if command -v nft >/dev/null; then
  for fam in ip ip6; do nft list table "$fam" kube-proxy >/dev/null 2>&1 && nft delete table "$fam" kube-proxy; done
fi

# 6. cgroups the kubelet created (depth first; empty now)
for cg in /sys/fs/cgroup/*/kubepods; do
  [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
done

# 7. interfaces: pod veths (normally gone with their netns) and the bridge
if ip link show "$BRIDGE" >/dev/null 2>&1; then
  for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$v" 2>/dev/null; done
  ip link del "$BRIDGE" 2>/dev/null
fi

# 8. kernel tunables the kubelet changed, back to what they were before up
if [ -f "$STATE/sysctl.orig" ]; then
  while IFS= read -r kv; do [ -n "$kv" ] && sysctl -q -w "$kv" 2>/dev/null; done <"$STATE/sysctl.orig"
fi

# 9. state (the image store in $CTR_ROOT and the binary cache stay)
rm -rf "$STATE" "$RUN" "$CTR_STATE"
rm -f /var/lib/cni/results/"$CNI_NET"-* 2>/dev/null

if out=$("$HERE/cluster/check-clean.sh"); then
  log "cluster down, nothing left ($(elapsed)s)"
else
  echo "$out" >&2
  die "cluster down left the above behind"
fi
