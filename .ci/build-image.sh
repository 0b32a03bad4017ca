#!/usr/bin/env bash
# Builds the operator's container image from the repository's Dockerfile, with no registry:
#
#   bash .ci/build-image.sh --binary BIN --tag NAME:TAG --out ARCHIVE
#
# The build context is staged from three files (Dockerfile, LICENSE, the static binary), so the
# image holds exactly what `make static` built and checked. The result is an OCI archive
# (ARCHIVE) that `ctr images import`, `podman load` and `docker load` all read; tests/release.rs
# checks that archive and `make e2e` runs it. With buildah (our CI) the build keeps its storage
# under the archive's directory, not in /var/lib/containers, and stamps every time with the
# commit's time (SOURCE_DATE_EPOCH overrides it): the same binary gives the same image digest.
# Without buildah, docker builds it (make e2e-kind) and `docker save` writes the archive.
set -euo pipefail

binary="" tag="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "[image] unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -x "$binary" ] && [ -n "$tag" ] && [ -n "$out" ] || {
  echo "usage: build-image.sh --binary BIN --tag NAME:TAG --out ARCHIVE" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if readelf -d "$binary" | grep -q NEEDED; then
  echo "[image] $binary needs shared libraries; the image has none (build it with make static)" >&2
  exit 1
fi

work=$(dirname "$out")
mkdir -p "$work"
context=$(mktemp -d "$work/context.XXXXXX")
trap 'rm -rf "$context"' EXIT
cp "$root/Dockerfile" "$root/LICENSE" "$context/"
cp "$binary" "$context/dataminer-keys-operator"
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
rm -f "$out"

if command -v buildah >/dev/null; then
  # vfs: no overlay mounts on the host; the storage lives beside the archive.
  store=(--storage-driver vfs --root "$work/storage" --runroot "$work/run")
  buildah "${store[@]}" bud --quiet --timestamp "$epoch" --layers=false --cni-config-dir "$work/cni" \
    -f "$context/Dockerfile" -t "$tag" "$context" >&2
  buildah "${store[@]}" push --quiet "$tag" "oci-archive:$out:$tag" >&2
  buildah "${store[@]}" rmi --all >/dev/null 2>&1 || true
elif command -v docker >/dev/null; then
  docker build -t "$tag" "$context" >&2
  docker save -o "$out" "$tag"
else
  echo "[image] needs buildah (apt-get install buildah) or a Docker engine" >&2
  exit 1
fi
echo "[image] $tag -> $out ($(du -h "$out" | cut -f1))" >&2
