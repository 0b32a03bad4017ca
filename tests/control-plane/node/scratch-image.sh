#!/usr/bin/env bash
# Builds a small image FROM scratch out of a directory, with buildah and no registry, and writes
# it as an OCI archive that `ctr images import` loads (the test node's pause and consumer images):
#
#   scratch-image.sh --tag NAME:TAG --out ARCHIVE --entrypoint PATH [--user UID:GID] ROOTFS
#
# Reproducible: every time stamp is the epoch. buildah's storage is a temporary directory, so
# nothing is left in /var/lib/containers. Without buildah, docker builds it (make e2e-kind) and
# `docker save` writes the archive.
set -euo pipefail
tag="" out="" entrypoint="" user=""
while [ $# -gt 1 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --entrypoint) entrypoint=$2; shift 2 ;;
    --user) user=$2; shift 2 ;;
    *) echo "[image] unknown argument: $1" >&2; exit 2 ;;
  esac
done
rootfs=${1:-}
[ -n "$tag" ] && [ -n "$out" ] && [ -n "$entrypoint" ] && [ -d "$rootfs" ] || {
  echo "usage: scratch-image.sh --tag NAME:TAG --out ARCHIVE --entrypoint PATH [--user UID:GID] ROOTFS" >&2
  exit 2
}
work=$(mktemp -d)
trap 'buildah --storage-driver vfs --root "$work/storage" --runroot "$work/run" rmi --all >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cp -a "$rootfs" "$work/rootfs"
{
  echo "FROM scratch"
  echo "COPY rootfs/ /"
  [ -n "$user" ] && echo "USER $user"
  echo "ENTRYPOINT [\"$entrypoint\"]"
} >"$work/Containerfile"
rm -f "$out"
if ! command -v buildah >/dev/null && command -v docker >/dev/null; then
  docker build -q -f "$work/Containerfile" -t "$tag" "$work" >&2
  docker save -o "$out" "$tag"
  exit 0
fi
command -v buildah >/dev/null || { echo "[image] needs buildah (apt-get install buildah) or docker" >&2; exit 1; }
store=(--storage-driver vfs --root "$work/storage" --runroot "$work/run")
buildah "${store[@]}" bud --quiet --timestamp 0 --layers=false --cni-config-dir "$work/cni" -f "$work/Containerfile" -t "$tag" "$work" >&2
buildah "${store[@]}" push --quiet "$tag" "oci-archive:$out:$tag" >&2
