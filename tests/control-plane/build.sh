#!/usr/bin/env bash
# Builds the pinned test tools (kube-apiserver, kube-controller-manager, kubectl, etcd, helm)
# from Go modules and caches the binaries outside the repository, keyed by version.
# Kubernetes is built per release: DMK_KUBERNETES_VERSION (or the first argument) picks one of
# KUBERNETES_VERSIONS in versions.env; the default is KUBERNETES_VERSION. etcd and helm are
# built once and shared by every release's directory.
# Prints the binary directory on stdout as its last line; progress goes to stderr.
# Returns at once when the cache already holds a build of the same pinned inputs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

version=${1:-${DMK_KUBERNETES_VERSION:-$KUBERNETES_VERSION}}
case " $KUBERNETES_VERSIONS " in
  *" $version "*) ;;
  *) echo "[control-plane] Kubernetes $version is not pinned; choose one of: $KUBERNETES_VERSIONS" >&2; exit 2 ;;
esac
minor=${version#v}; minor=${minor%.*}   # 1.37
k8s_mod="$here/kubernetes/$minor"

cache_root=${DMK_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dataminer-keys/control-plane}
tools_dir="$cache_root/etcd${ETCD_VERSION#v}-helm${HELM_VERSION#v}"
bin_dir="$cache_root/${version}-etcd${ETCD_VERSION#v}-helm${HELM_VERSION#v}"

log() { printf '[control-plane] %s\n' "$*" >&2; }

# Each stamp covers everything that decides what gets built there: a changed go.sum rebuilds.
tools_stamp=$(cat "$here/build.sh" "$here/etcd/go.mod" "$here/etcd/go.sum" \
  "$here/helm/go.mod" "$here/helm/go.sum" <(echo "$ETCD_VERSION $HELM_VERSION") | sha256sum | cut -c1-16)
stamp=$(cat <(echo "$tools_stamp $version") "$k8s_mod/go.mod" "$k8s_mod/go.sum" | sha256sum | cut -c1-16)

have() { # have DIR STAMP BINARY...
  local dir=$1 want=$2; shift 2
  [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$want" ] || return 1
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
}

if have "$bin_dir" "$stamp" kube-apiserver kube-controller-manager kubectl etcd helm; then
  log "cached: $bin_dir"
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || { log "go is not on PATH: install Go >= 1.26"; exit 1; }
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local
mkdir -p "$cache_root"
# One build at a time: test binaries that start together wait here for the first one's build.
exec 9>"$cache_root/.build.lock"
flock 9
if have "$bin_dir" "$stamp" kube-apiserver kube-controller-manager kubectl etcd helm; then
  log "built meanwhile: $bin_dir"
  echo "$bin_dir"
  exit 0
fi

# Builds into a fresh staging directory and moves it into place whole, so a killed build
# never leaves a half-filled directory that looks cached.
staged() { # staged DIR STAMP FUNCTION
  local dir=$1 want=$2 fn=$3 staging
  staging=$(mktemp -d "$cache_root/.tmp.XXXXXX")
  trap "rm -rf '$staging'" EXIT
  "$fn" "$staging"
  echo "$want" >"$staging/.stamp"
  rm -rf "$dir"
  mv "$staging" "$dir"
  trap - EXIT
}

build_tools() {
  log "go build etcd ${ETCD_VERSION}"
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$1/etcd" go.etcd.io/etcd/server/v3)
  log "go build helm ${HELM_VERSION}"
  (cd "$here/helm" && go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
    -o "$1/helm" helm.sh/helm/v3/cmd/helm)
}

# Stamps the version the way Kubernetes' own release build does, so /version tells the truth.
# The build date is the release's module timestamp, which keeps the build reproducible.
build_kubernetes() {
  local out=$1
  (
    cd "$k8s_mod"
    build_date=$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=${version}"
      ldflags+=" -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor#1.}"
      ldflags+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=${build_date}"
    done
    log "go build kube-apiserver kube-controller-manager kubectl ${version} (tags selinux,notest)"
    go build -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$out/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kubectl
  )
  # Hard links where the file system allows: every release's directory holds the whole set.
  for b in etcd helm; do ln "$tools_dir/$b" "$out/$b" 2>/dev/null || cp "$tools_dir/$b" "$out/$b"; done
}

log "a cold build downloads the modules and compiles for several minutes; later runs are instant"
if ! have "$tools_dir" "$tools_stamp" etcd helm; then
  staged "$tools_dir" "$tools_stamp" build_tools
fi
staged "$bin_dir" "$stamp" build_kubernetes

"$bin_dir/kube-apiserver" --version >&2
"$bin_dir/etcd" --version | sed -n 1p >&2  # sed reads all: head would SIGPIPE etcd (exit 141 under pipefail)
"$bin_dir/helm" version --short >&2
log "done: $bin_dir"
echo "$bin_dir"
