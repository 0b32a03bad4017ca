#!/usr/bin/env bash
# Builds krew and validate-krew-manifest (pinned as tools in tests/control-plane/krew/go.mod) and
# caches them outside the repository, keyed by their inputs. Prints the directory holding both
# on stdout as its last line; returns at once when the cache holds them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${DMK_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dataminer-keys/control-plane}
stamp=$(cat "$here/build-krew.sh" "$here/krew/go.mod" "$here/krew/go.sum" | sha256sum | cut -c1-16)
dir="$cache_root/krew-$stamp"

if [ ! -x "$dir/krew" ] || [ ! -x "$dir/validate-krew-manifest" ]; then
  command -v go >/dev/null || { echo "[krew] go is not on PATH: install Go >= 1.26" >&2; exit 1; }
  echo "[krew] building krew and validate-krew-manifest into $dir" >&2
  mkdir -p "$dir"
  (
    cd "$here/krew"
    for tool in krew validate-krew-manifest; do
      CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local \
        go build -trimpath -ldflags "-s -w" -o "$dir/$tool.tmp" "sigs.k8s.io/krew/cmd/$tool"
      mv "$dir/$tool.tmp" "$dir/$tool"
    done
  )
fi
echo "$dir"
