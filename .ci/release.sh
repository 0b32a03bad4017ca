#!/usr/bin/env bash
# Assembles a release from built binaries (`make release` passes the static ones):
#
#   bash .ci/release.sh --out DIR --operator BIN --plugin BIN [--base-url URL] [--platform OS/ARCH]
#
# DIR ends up holding exactly what a GitHub release of tag v<version> carries (docs/release.md):
#   dataminer-keys-operator-<os>-<arch>     the operator binary
#   kubectl-dmkeys-<os>-<arch>.tar.gz       the plugin and LICENSE, at the top (krew's layout)
#   dataminer-keys-operator-<version>.tgz   the Helm chart and LICENSE (`helm package`, pinned helm)
#   dataminer-keys-operator-crds.yaml       every CRD, for installs without Helm
#   dmkeys.yaml                             the krew manifest, with the tarball's sha256
#   SHA256SUMS                              `sha256sum -c` format, every file above
# The version is the one both binaries print; the chart must carry the same. Names other than the
# chart's have no version in them, so `releases/latest/download/<name>` stays a stable link.
# The plugin archive, the manifest and the CRD bundle are reproducible (same binaries, same
# commit -> same bytes); `helm package` stamps the time it ran into the chart archive.
set -euo pipefail

out="" operator="" plugin="" base_url="" platform="linux/amd64"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --operator) operator=$2; shift 2 ;;
    --plugin) plugin=$2; shift 2 ;;
    --base-url) base_url=$2; shift 2 ;;
    --platform) platform=$2; shift 2 ;;
    *) echo "[release] unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] && [ -x "$operator" ] && [ -x "$plugin" ] || {
  echo "usage: $0 --out DIR --operator BIN --plugin BIN [--base-url URL] [--platform OS/ARCH]" >&2
  exit 2
}
os=${platform%/*} arch=${platform#*/}
base_url=${base_url%/}
# Paths as the caller meant them, then work from the repository's root.
out=$(realpath -m "$out") operator=$(realpath "$operator") plugin=$(realpath "$plugin")
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# DIR is emptied first: only when it is a previous release (or empty), never any directory.
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -f "$out/SHA256SUMS" ]; then
  echo "[release] $out holds files and no SHA256SUMS: not a release directory, not emptying it" >&2
  exit 1
fi

# One version everywhere, read from what was built.
version=$("$plugin" --version | sed -n 's/^kubectl-dmkeys \([^ ]*\)$/\1/p')
[ -n "$version" ] || { echo "[release] $plugin --version did not print 'kubectl-dmkeys <version>'" >&2; exit 1; }
[ "$("$operator" --version)" = "dataminer-keys-operator $version" ] || {
  echo "[release] the operator says '$("$operator" --version)', the plugin $version" >&2; exit 1; }
chart=charts/dataminer-keys-operator
for key in version appVersion; do
  got=$(sed -n "s/^$key: *\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" "$chart/Chart.yaml")
  [ "$got" = "$version" ] || { echo "[release] Chart.yaml $key is '$got', the binaries $version" >&2; exit 1; }
done
repo=$(sed -n 's/^repository = "\(.*\)"$/\1/p' Cargo.toml)
base_url=${base_url:-$repo/releases/download/v$version}
# Timestamps inside archives: the commit's, so a rebuild of one commit gives the same bytes.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

bin_dir=$(bash tests/control-plane/build.sh 2>/dev/null | tail -n1)
helm="$bin_dir/helm"

rm -rf "$out"
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# The operator.
install -m 0755 "$operator" "$out/dataminer-keys-operator-$os-$arch"

# The plugin: kubectl-dmkeys and LICENSE at the archive's top, owned by root, fixed time.
mkdir "$stage/plugin"
install -m 0755 "$plugin" "$stage/plugin/kubectl-dmkeys"
install -m 0644 LICENSE "$stage/plugin/LICENSE"
tarball="kubectl-dmkeys-$os-$arch.tar.gz"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" --format=ustar \
  -C "$stage/plugin" -cf - LICENSE kubectl-dmkeys | gzip -n -9 > "$out/$tarball"

# The chart, as lint --strict accepts it, packaged from a copy that also holds LICENSE (the
# repository keeps one LICENSE, at its root).
cp -R "$chart" "$stage/chart"
install -m 0644 LICENSE "$stage/chart/LICENSE"
"$helm" lint --strict --quiet "$stage/chart" >&2
"$helm" package "$stage/chart" --destination "$out" >&2
[ -f "$out/dataminer-keys-operator-$version.tgz" ] || { echo "[release] helm package wrote another name" >&2; exit 1; }

# The CRDs, one YAML stream.
crds="$out/dataminer-keys-operator-crds.yaml"
first=1
for f in crds/*.yaml; do
  [ $first -eq 1 ] || echo "---" >> "$crds"
  cat "$f" >> "$crds"
  first=0
done

# The krew manifest: the plugin's name is the file's name (krew's rule).
sha=$(sha256sum "$out/$tarball" | cut -d' ' -f1)
cat > "$out/dmkeys.yaml" <<EOF
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: dmkeys
spec:
  version: v$version
  homepage: $repo
  shortDescription: Manage DataMiner API key sets kept by an operator
  description: |
    Lists, describes, creates, regenerates and revokes DataMinerKeySet resources,
    which the dataminer-keys-operator keeps as Secrets holding a primary and a
    secondary DataMiner API key. Regenerate and revoke ask you to type the key
    set's label. Shows who asked for every action and the keys' fingerprints;
    prints a key value only when asked to (show, copy).
  caveats: |
    The cluster needs the dataminer-keys-operator (its Helm chart installs the
    DataMinerKeySet CRD and the operator): $repo
  platforms:
    - selector:
        matchLabels:
          os: $os
          arch: $arch
      uri: $base_url/$tarball
      sha256: $sha
      bin: kubectl-dmkeys
      files:
        - from: kubectl-dmkeys
          to: .
        - from: LICENSE
          to: .
EOF

(cd "$out" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | LC_ALL=C sort \
  | xargs sha256sum -- > SHA256SUMS)
echo "[release] v$version in $out:" >&2
(cd "$out" && ls -l) >&2
