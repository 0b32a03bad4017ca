#!/usr/bin/env bash
# Runs on the node (make e2e: the host; make e2e-kind: inside the kind node, over docker exec):
# sends SIGNAL to the main process of every container of the Pod with uid POD_UID, found
# through the Pod's cgroups (cgroupfs or systemd naming, cgroup v1 or v2). The pause process
# that holds the Pod's namespaces is left alone.
#   signal-pod.sh SIGNAL POD_UID
set -euo pipefail
sig=$1 uid=$2
under=${uid//-/_}   # the systemd driver writes the uid with underscores
pids=$(find /sys/fs/cgroup \( -path "*pod${uid}*" -o -path "*pod${under}*" \) -name cgroup.procs \
  -exec cat {} + 2>/dev/null | sort -un)
found=0
for pid in $pids; do
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = pause ] && continue
  # A container's first process: its parent is the runc shim.
  parent=$(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null || echo 0)
  case "$(cat "/proc/$parent/comm" 2>/dev/null)" in containerd-shim*) ;; *) continue ;; esac
  kill "-$sig" "$pid" && found=$((found + 1))
done
[ "$found" -gt 0 ] || { echo "[signal-pod] no container process found for Pod $uid" >&2; exit 1; }
echo "[signal-pod] SIG$sig sent to $found process(es) of Pod $uid" >&2
