#!/usr/bin/env bash
# The test node's two daemons, containerd then kubelet, started by the kit (src/node/) inside the
# node's network namespace and a private mount namespace:
#
#   nsenter --net=/run/netns/NODE -- unshare --mount --propagation private -- run-node.sh DIR BIN
#
# Every path either daemon writes to outside DIR gets a tmpfs here, seen by this mount namespace
# alone, so nothing they write outlives it: the kubelet's hard-coded /var/lib/kubelet and
# /var/log/containers, containerd's /run/containerd (shim sockets), and the CNI defaults. The kit
# creates a missing mount point before and removes it after. Both daemons die with this script
# (SIGKILL as parent-death signal); SIGTERM stops the kubelet, then containerd.
set -euo pipefail
dir=$1 bin=$2

for d in /var/lib/kubelet /var/log/containers /var/log/pods /run/containerd /run/netns \
  /var/lib/cni /etc/cni /opt/cni; do
  mount -t tmpfs -o mode=0755,size=256m dmk-node "$d"
done
export PATH="$bin:$PATH"

setpriv --pdeathsig KILL -- containerd --config "$dir/containerd.toml" >>"$dir/containerd.log" 2>&1 &
containerd=$!
for _ in $(seq 200); do
  [ -S "$dir/containerd.sock" ] && break
  kill -0 "$containerd" 2>/dev/null || { echo "[node] containerd exited; see $dir/containerd.log" >&2; exit 1; }
  sleep 0.05
done
[ -S "$dir/containerd.sock" ] || { echo "[node] containerd did not open its socket in 10s" >&2; exit 1; }

setpriv --pdeathsig KILL -- kubelet --config="$dir/kubelet.yaml" --kubeconfig="$dir/kubelet.kubeconfig" \
  --root-dir="$dir/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=2 \
  >>"$dir/kubelet.log" 2>&1 &
kubelet=$!

stop() {
  kill -TERM "$kubelet" 2>/dev/null || true
  wait "$kubelet" 2>/dev/null || true
  kill -TERM "$containerd" 2>/dev/null || true
  wait "$containerd" 2>/dev/null || true
  exit 0
}
trap stop TERM INT
# Either daemon exiting ends the node (the kit sees this process gone and reports the logs).
wait -n "$kubelet" "$containerd" || true
echo "[node] a daemon exited; see $dir/kubelet.log and $dir/containerd.log" >&2
kill -TERM "$kubelet" "$containerd" 2>/dev/null || true
exit 1
