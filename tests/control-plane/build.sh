#!/usr/bin/env bash
# Builds the pinned test tools (kube-apiserver, kube-controller-manager, kubectl, etcd, helm)
# from Go modules and caches the binaries outside the repository, keyed by version.
# Prints the binary directory on stdout as its last line; progress goes to stderr.
# Returns at once when the cache already holds a build of the same pinned inputs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache_root=${DMK_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dataminer-keys/control-plane}
bin_dir="$cache_root/${KUBERNETES_VERSION}-etcd${ETCD_VERSION#v}-helm${HELM_VERSION#v}"
binaries=(kube-apiserver kube-controller-manager kubectl etcd helm)

log() { printf '[control-plane] %s\n' "$*" >&2; }

# The stamp covers everything that decides what gets built: a changed go.sum rebuilds.
stamp=$(cat "$here/versions.env" "$here/build.sh" \
  "$here/kubernetes/go.mod" "$here/kubernetes/go.sum" \
  "$here/etcd/go.mod" "$here/etcd/go.sum" \
  "$here/helm/go.mod" "$here/helm/go.sum" | sha256sum | cut -c1-16)

have_all() {
  [ "$(cat "$bin_dir/.stamp" 2>/dev/null)" = "$stamp" ] || return 1
  for b in "${binaries[@]}"; do [ -x "$bin_dir/$b" ] || return 1; done
}

if have_all; then
  log "cached: $bin_dir"
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || { log "go is not on PATH: install Go >= 1.26"; exit 1; }
log "building Kubernetes ${KUBERNETES_VERSION}, etcd ${ETCD_VERSION} and helm ${HELM_VERSION} into $bin_dir"
log "a cold build downloads the modules and compiles for several minutes; later runs are instant"

staging=$(mktemp -d "${cache_root}.tmp.XXXXXX" 2>/dev/null || { mkdir -p "$cache_root"; mktemp -d "${cache_root}/.tmp.XXXXXX"; })
trap 'rm -rf "$staging"' EXIT

export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local

# Stamp the version the way Kubernetes' own release build does, so /version tells the truth.
# The build date is the release's module timestamp, which keeps the build reproducible.
(
  cd "$here/kubernetes"
  build_date=$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
  minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=${KUBERNETES_VERSION}"
    ldflags+=" -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor}"
    ldflags+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=${build_date}"
  done
  log "go build kube-apiserver kube-controller-manager kubectl (tags selinux,notest)"
  go build -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$staging/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl
)

(
  cd "$here/etcd"
  log "go build etcd"
  go build -trimpath -ldflags "-s -w" -o "$staging/etcd" go.etcd.io/etcd/server/v3
)

(
  cd "$here/helm"
  log "go build helm"
  go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
    -o "$staging/helm" helm.sh/helm/v3/cmd/helm
)

echo "$stamp" >"$staging/.stamp"
mkdir -p "$cache_root"
rm -rf "$bin_dir"
mv "$staging" "$bin_dir"
trap - EXIT
"$bin_dir/kube-apiserver" --version >&2
"$bin_dir/etcd" --version | sed -n 1p >&2  # sed reads all: head would SIGPIPE etcd (exit 141 under pipefail)
"$bin_dir/helm" version --short >&2
log "done: $bin_dir"
echo "$bin_dir"
