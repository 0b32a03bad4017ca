#!/usr/bin/env bash
# Builds what the test node runs (make e2e), from Go modules and C source, and caches it outside
# the repository, keyed by the pinned inputs: kubelet and kube-scheduler (the Kubernetes release's
# own module set, kubernetes/<minor>), containerd with its runc shim and ctr (node/containerd),
# the CNI plugins bridge, host-local and loopback (node/cni), and the pause program that holds
# each Pod's namespaces (compiled static from the Kubernetes module's build/pause/linux/pause.c).
# It also writes pause.oci.tar, the pause image (buildah). runc and buildah come from Debian
# (install-node-packages.sh).
# Prints the binary directory on stdout as its last line; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

version=${1:-${DMK_KUBERNETES_VERSION:-$KUBERNETES_VERSION}}
case " $KUBERNETES_VERSIONS " in
  *" $version "*) ;;
  *) echo "[node] Kubernetes $version is not pinned; choose one of: $KUBERNETES_VERSIONS" >&2; exit 2 ;;
esac
minor=${version#v}; minor=${minor%.*}
k8s_mod="$here/kubernetes/$minor"
cache_root=${DMK_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dataminer-keys/control-plane}
bin_dir="$cache_root/node-${version}-containerd${CONTAINERD_VERSION#v}-cni${CNI_PLUGINS_VERSION#v}"
log() { printf '[node] %s\n' "$*" >&2; }

stamp=$(cat "$here/build-node.sh" "$here/node/scratch-image.sh" "$k8s_mod/go.mod" "$k8s_mod/go.sum" \
  "$here/node/containerd/go.mod" "$here/node/containerd/go.sum" \
  "$here/node/cni/go.mod" "$here/node/cni/go.sum" \
  <(echo "$version $CONTAINERD_VERSION $CNI_PLUGINS_VERSION") | sha256sum | cut -c1-16)
binaries=(kubelet kube-scheduler containerd containerd-shim-runc-v2 ctr pause cni/bridge cni/host-local cni/loopback)
files=(pause.oci.tar)
have() {
  [ "$(cat "$bin_dir/.stamp" 2>/dev/null)" = "$stamp" ] || return 1
  for b in "${binaries[@]}"; do [ -x "$bin_dir/$b" ] || return 1; done
  for f in "${files[@]}"; do [ -s "$bin_dir/$f" ] || return 1; done
}
if have; then log "cached: $bin_dir"; echo "$bin_dir"; exit 0; fi

command -v go >/dev/null || { log "go is not on PATH: install Go >= 1.26"; exit 1; }
command -v gcc >/dev/null || { log "gcc is not on PATH (the pause program is C)"; exit 1; }
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local
mkdir -p "$cache_root"
exec 9>"$cache_root/.build.lock"
flock 9
if have; then log "built meanwhile: $bin_dir"; echo "$bin_dir"; exit 0; fi

staging=$(mktemp -d "$cache_root/.tmp.XXXXXX")
trap 'rm -rf "$staging"' EXIT
log "a cold build downloads the modules and compiles for several minutes; later runs are instant"
(
  cd "$k8s_mod"
  build_date=$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=${version} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor#1.}"
    ldflags+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=${build_date}"
  done
  log "go build kubelet kube-scheduler ${version}"
  go build -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$staging/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler
  src=$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)
  log "gcc -static pause (from k8s.io/kubernetes ${version} build/pause/linux/pause.c)"
  gcc -Os -static -Wall -Werror -DVERSION="\"dmk-${version}\"" -o "$staging/pause" "$src/build/pause/linux/pause.c"
  strip "$staging/pause"
)
(
  cd "$here/node/containerd"
  pkg=github.com/containerd/containerd/v2
  log "go build containerd containerd-shim-runc-v2 ctr ${CONTAINERD_VERSION}"
  # No btrfs, devmapper or ZFS snapshotters: they need C libraries, and the node uses overlayfs.
  go build -trimpath -tags "no_btrfs no_devmapper no_zfs" \
    -ldflags "-s -w -X $pkg/version.Version=${CONTAINERD_VERSION} -X $pkg/version.Revision=module" \
    -o "$staging/" $pkg/cmd/containerd $pkg/cmd/containerd-shim-runc-v2 $pkg/cmd/ctr
)
(
  cd "$here/node/cni"
  log "go build CNI plugins bridge host-local loopback ${CNI_PLUGINS_VERSION}"
  mkdir -p "$staging/cni"
  go build -trimpath -ldflags "-s -w" -o "$staging/cni/" \
    github.com/containernetworking/plugins/plugins/main/bridge \
    github.com/containernetworking/plugins/plugins/ipam/host-local \
    github.com/containernetworking/plugins/plugins/main/loopback
)
log "pause image ${PAUSE_IMAGE_TAG:=dmk.local/pause:node} (FROM scratch, buildah)"
mkdir -p "$staging/pause-rootfs"
cp "$staging/pause" "$staging/pause-rootfs/pause"
bash "$here/node/scratch-image.sh" --tag "$PAUSE_IMAGE_TAG" --out "$staging/pause.oci.tar" \
  --entrypoint /pause --user 65535:65535 "$staging/pause-rootfs"
rm -rf "$staging/pause-rootfs"
echo "$stamp" >"$staging/.stamp"
rm -rf "$bin_dir"
mv "$staging" "$bin_dir"
trap - EXIT
"$bin_dir/kubelet" --version >&2
"$bin_dir/containerd" --version >&2
log "done: $bin_dir"
echo "$bin_dir"
