#!/usr/bin/env bash
# Lists everything the local cluster may leave behind: processes, mounts, network namespaces,
# iptables/nftables chains, cgroups, interfaces, state directories. Prints one line per leftover and
# exits 1 if there is any, 0 (silently) if the machine is clean. Used by cluster-down.sh and the e2e test.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
found=0
left() { echo "LEFTOVER $*"; found=1; }

# processes: every component names the state dir on its command line, the shims name our
# containerd's socket (other users of the cached binaries, e.g. the integration tests' apiserver,
# do neither; short-lived clients such as `ctr -a <socket>` don't count); pod processes live in
# kubepods cgroups.
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  [ "$pid" = $$ ] && continue
  cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
  case "$cmd" in
    *"$STATE"/*|*"-address $CTR_SOCK"*|*pv-provisioner.py*) left "process $pid $cmd"; continue ;;
  esac
  grep -q kubepods 2>/dev/null "$d/cgroup" && left "process $pid in kubepods: $cmd"
done
# mounts
while read -r mp; do
  case "$mp" in
    "$STATE"|"$STATE"/*|"$CTR_STATE"|"$CTR_STATE"/*|"$CTR_ROOT"/*|/run/netns/cni-*) left "mount $mp" ;;
  esac
done < <(awk '{print $5}' /proc/self/mountinfo)
# network namespaces made by the CNI for pods
for ns in /run/netns/cni-*; do [ -e "$ns" ] && left "netns $ns"; done
# iptables chains and rules (both families)
for ipt in iptables ip6tables; do
  command -v "$ipt-save" >/dev/null || continue
  "$ipt-save" 2>/dev/null | grep -E '^:(KUBE-|CNI-|LC-PODS)|-j (KUBE-|CNI-|LC-PODS)' | sed "s/^/LEFTOVER $ipt /" && found=1
done
if command -v nft >/dev/null; then
  nft list tables 2>/dev/null | grep -E 'kube-proxy' | sed 's/^/LEFTOVER nft /' && found=1
fi
# cgroups
for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do [ -d "$cg" ] && left "cgroup $cg"; done
# interfaces: the bridge, and veths not owned by docker
ip link show "$BRIDGE" >/dev/null 2>&1 && left "interface $BRIDGE"
while read -r line; do
  case "$line" in *"master docker0"*) ;; *) left "interface ${line%%@*}" ;; esac
done < <(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2 " " $3}')
# state
[ -e "$STATE" ] && left "directory $STATE"
[ -e "$RUN" ] && left "directory $RUN"
[ -S "$CTR_SOCK" ] && left "socket $CTR_SOCK"
exit $found
