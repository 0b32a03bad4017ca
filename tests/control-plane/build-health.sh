#!/usr/bin/env bash
# Builds tests/control-plane/health (kstatus from sigs.k8s.io/cli-utils and Argo CD's Lua
# runtime, gopher-lua, pinned in its go.mod) and caches the binary outside the repository, keyed
# by its inputs. Prints the binary's path on stdout as its last line; returns at once when the
# cache holds it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${DMK_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dataminer-keys/control-plane}
stamp=$(cat "$here/build-health.sh" "$here/health/go.mod" "$here/health/go.sum" \
  "$here/health/main.go" | sha256sum | cut -c1-16)
bin="$cache_root/health-$stamp/health"

if [ ! -x "$bin" ]; then
  command -v go >/dev/null || { echo "[health] go is not on PATH: install Go >= 1.26" >&2; exit 1; }
  echo "[health] building the kstatus and Argo CD health checker into $(dirname "$bin")" >&2
  mkdir -p "$(dirname "$bin")"
  (
    cd "$here/health"
    CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local \
      go build -trimpath -ldflags "-s -w" -o "$bin.tmp" .
  )
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
