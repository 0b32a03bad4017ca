#!/usr/bin/env bash
# Debian packages the image builds and the test node need, installed when missing (as root, as
# the node itself needs): buildah (images FROM scratch, no registry), runc (what containerd's
# shim runs containers with), busybox-static (the consumer image's shell and tools).
#   install-node-packages.sh [PACKAGE...]     (default: all three)
set -euo pipefail
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(buildah runc busybox-static)
need=()
for p in "${wanted[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
[ ${#need[@]} -gt 0 ] || exit 0
if [ "$(id -u)" != 0 ]; then
  echo "[packages] missing ${need[*]}: apt-get install ${need[*]} (as root)" >&2
  exit 1
fi
echo "[packages] apt-get install ${need[*]}" >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
