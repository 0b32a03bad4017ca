#!/usr/bin/env bash
# The consumer image for the e2e scenario: Debian's static busybox on an empty base, enough for
# examples/consumers (sh, sha256sum, cut, sleep), built here with no registry.
#   consumer-image.sh --tag NAME:TAG --out ARCHIVE
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$here/../control-plane/install-node-packages.sh" busybox-static
busybox=/bin/busybox
if readelf -d "$busybox" | grep -q NEEDED; then
  echo "[consumer] $busybox needs shared libraries: apt-get install busybox-static" >&2; exit 1
fi
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin"
cp "$busybox" "$rootfs/bin/busybox"
for applet in sh sha256sum cut sleep cat echo ls; do ln -s busybox "$rootfs/bin/$applet"; done
bash "$here/../control-plane/node/scratch-image.sh" --entrypoint /bin/sh --user 10001:10001 \
  "$@" "$rootfs"
