#!/usr/bin/env bash
# Checks a release directory as `make release` leaves it (`make release` runs this last; CI runs
# it again): every artifact there and nothing else, SHA256SUMS true, the operator static, the
# plugin archive in krew's layout and installable by krew from the manifest, the chart lint-clean
# with the same CRDs as the bundle, one version everywhere.
#
#   bash .ci/check-release.sh [DIR]      (default target/release-artifacts)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=${1:-target/release-artifacts}
fail() { echo "[check-release] $*" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
os=linux arch=amd64
operator="dataminer-keys-operator-$os-$arch"
tarball="kubectl-dmkeys-$os-$arch.tar.gz"
chart="dataminer-keys-operator-$version.tgz"
crds="dataminer-keys-operator-crds.yaml"
expected=("$operator" "$tarball" "$chart" "$crds" dmkeys.yaml SHA256SUMS)

# Exactly the expected files, none empty.
[ -d "$dir" ] || fail "$dir does not exist: run make release"
for f in "${expected[@]}"; do [ -s "$dir/$f" ] || fail "$dir/$f is missing or empty"; done
present=$(cd "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort)
wanted=$(printf '%s\n' "${expected[@]}" | LC_ALL=C sort)
[ "$present" = "$wanted" ] || fail "unexpected files in $dir: $(comm -23 <(echo "$present") <(echo "$wanted") | tr '\n' ' ')"

# SHA256SUMS covers every other file, and each matches.
listed=$(awk '{print $2}' "$dir/SHA256SUMS" | LC_ALL=C sort)
[ "$listed" = "$(grep -vx SHA256SUMS <<<"$wanted")" ] || fail "SHA256SUMS lists: $listed"
(cd "$dir" && sha256sum --check --strict --quiet SHA256SUMS) || fail "SHA256SUMS does not match"

# The operator: static, and the version.
readelf -d "$dir/$operator" | grep -q NEEDED && fail "$operator needs shared libraries"
[ "$("$dir/$operator" --version)" = "dataminer-keys-operator $version" ] || fail "$operator --version"

# The plugin archive: LICENSE and kubectl-dmkeys at the top, nothing else.
entries=$(tar -tzf "$dir/$tarball" | LC_ALL=C sort | tr '\n' ' ')
[ "$entries" = "LICENSE kubectl-dmkeys " ] || fail "$tarball holds: $entries"

# krew: the manifest passes krew-index's own validator (the install step downloads the uri, so
# it is left to the release test, which serves the archive locally), and krew installs the
# archive; the installed plugin runs and LICENSE sits next to it.
sha=$(sed -n 's/^ *sha256: *//p' "$dir/dmkeys.yaml")
[ "$sha" = "$(sha256sum "$dir/$tarball" | cut -d' ' -f1)" ] || fail "dmkeys.yaml sha256 is not the archive's"
grep -q "^  version: v$version$" "$dir/dmkeys.yaml" || fail "dmkeys.yaml version is not v$version"
krew=$(bash tests/control-plane/build-krew.sh | tail -n1)
"$krew/validate-krew-manifest" -manifest "$dir/dmkeys.yaml" -skip-install 2>/dev/null \
  || { "$krew/validate-krew-manifest" -manifest "$dir/dmkeys.yaml" -skip-install; fail "krew refuses dmkeys.yaml"; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
KREW_ROOT=$root KREW_NO_UPGRADE_CHECK=1 "$krew/krew" install --manifest="$dir/dmkeys.yaml" \
  --archive="$dir/$tarball" </dev/null >/dev/null 2>"$root.log" || { cat "$root.log" >&2; fail "krew install"; }
rm -f "$root.log"
[ "$("$root/bin/kubectl-dmkeys" --version)" = "kubectl-dmkeys $version" ] || fail "installed plugin --version"
[ -f "$root/store/dmkeys/v$version/LICENSE" ] || fail "krew did not install LICENSE"

# The chart: the version, lint --strict clean, LICENSE inside, and its CRD (a template) is the
# bundle's.
bin=$(bash tests/control-plane/build.sh 2>/dev/null | tail -n1)
"$bin/helm" lint --strict --quiet "$dir/$chart" >/dev/null || fail "helm lint --strict $chart"
tar -xzOf "$dir/$chart" dataminer-keys-operator/LICENSE | cmp -s - LICENSE || fail "$chart has no LICENSE"
"$bin/helm" show chart "$dir/$chart" | grep -qx "version: $version" || fail "$chart version"
"$bin/helm" show chart "$dir/$chart" | grep -qx "appVersion: $version" || fail "$chart appVersion"
# (documents are compared from their spec on: the chart adds only labels and annotations)
docs() { grep -vx -- --- | grep -v '^$'; }
spec() { sed -n '/^spec:/,$p'; }
diff <("$bin/helm" template dmk "$dir/$chart" --kube-version 1.36.3 --show-only templates/crd.yaml | spec) \
  <(spec <"$dir/$crds") >/dev/null || fail "$chart's CRD differs from $crds"
diff <(cat crds/*.yaml | docs) <(docs <"$dir/$crds") >/dev/null || fail "$crds differs from crds/"

echo "[check-release] v$version: ${#expected[@]} files in $dir, SHA256SUMS true, krew installs the plugin, chart lint-clean"
