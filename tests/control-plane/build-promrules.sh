#!/usr/bin/env bash
# Builds tests/control-plane/promrules (Prometheus' own rule parser, pinned in its go.mod), and
# beside it `alerts.test` (its TestAlerts: Prometheus' own rule evaluation over test series),
# and caches both outside the repository, keyed by their inputs. Prints the checker's path on
# stdout as its last line; returns at once when the cache holds them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${DMK_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dataminer-keys/control-plane}
stamp=$(cat "$here/build-promrules.sh" "$here/promrules/go.mod" "$here/promrules/go.sum" \
  "$here/promrules/main.go" "$here/promrules/alerts_test.go" | sha256sum | cut -c1-16)
bin="$cache_root/promrules-$stamp/promrules"

if [ ! -x "$bin" ]; then
  command -v go >/dev/null || { echo "[promrules] go is not on PATH: install Go >= 1.26" >&2; exit 1; }
  echo "[promrules] building Prometheus' rule checker into $(dirname "$bin")" >&2
  mkdir -p "$(dirname "$bin")"
  (
    cd "$here/promrules"
    CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local \
      go build -trimpath -ldflags "-s -w" -o "$bin.tmp" .
    CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local \
      go test -c -trimpath -ldflags "-s -w" -o "$(dirname "$bin")/alerts.test" .
  )
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
