#!/usr/bin/env bash
# Installs cargo-deny at a pinned version (`cargo install --locked`, from crates.io) into a cache
# outside the repository. Prints the binary's path on stdout as its last line; returns at once
# when the cache holds it. `make deny` checks the dependency policy in deny.toml with it.
set -euo pipefail

version=0.20.2
cache_root=${DMK_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dataminer-keys/control-plane}
root="$cache_root/cargo-deny-$version"
bin="$root/bin/cargo-deny"

if [ ! -x "$bin" ]; then
  echo "[cargo-deny] installing cargo-deny $version into $root (about 2 minutes)" >&2
  cargo install --locked --quiet --root "$root.tmp" cargo-deny --version "$version" >&2
  rm -rf "$root"
  mv "$root.tmp" "$root"
fi
echo "$bin"
