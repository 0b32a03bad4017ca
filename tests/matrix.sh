#!/usr/bin/env bash
# make matrix: the suites that a Kubernetes version can break, on a local control plane of each
# pinned release (tests/control-plane/versions.env), one after the other. Prints one line per
# release and a table at the end; exits non-zero if any release failed.
#   MATRIX_VERSIONS="v1.34.4 v1.37.2"   only these releases
#   MATRIX_SUITES="requester admission"  only these test binaries
#   MATRIX_SKIP_DEFAULT=1                 all but the default release (make test runs that one whole)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=control-plane/versions.env
. tests/control-plane/versions.env

# A release may carry "+map-beta": MutatingAdmissionPolicy v1beta1 turned on (1.34 and 1.35
# serve it only so), where the chart records the requester with the beta policy.
versions=${MATRIX_VERSIONS:-$KUBERNETES_VERSIONS v1.35.4+map-beta}
if [ "${MATRIX_SKIP_DEFAULT:-}" = 1 ]; then
  versions=$(for v in $versions; do [ "$v" = "$KUBERNETES_VERSION" ] || echo "$v"; done)
fi
# Key set lifecycle, admission and CEL (with and without the CRD's rules), integrity, who asked
# (policy or webhook), the chart's install, RBAC and policies, and the control plane itself.
suites=${MATRIX_SUITES:-"control_plane_smoke keyset_lifecycle admission cel_rules without_cel_rules integrity requester requester_webhook helm_chart"}
cargo=${CARGO:-cargo}
out=target/matrix
mkdir -p "$out"
rm -f "$out"/v*.log

# With the beta policy, only where it makes a difference: admission, who asked, the chart.
beta_suites=${MATRIX_BETA_SUITES:-"admission requester helm_chart"}
args_for() { local a=() s; for s in "$@"; do a+=(--test "$s"); done; echo "${a[@]}"; }
read -ra test_args <<<"$(args_for $suites)"
# Build once, before the clock starts for the first release.
"$cargo" test --no-run "${test_args[@]}" >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
"$cargo" build --bins >>"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }

status=0
summary=()
for v in $versions; do
  start=$(date +%s)
  log="$out/$v.log"
  release=${v%+map-beta}
  beta=0
  if [ "$release" != "$v" ]; then beta=1; fi
  if ! bash tests/control-plane/build.sh "$release" >"$log" 2>&1; then
    line=$(printf '%-16s FAILED   control plane build (see %s)' "$v" "$log")
    status=1
  else
    run_args=("${test_args[@]}")
    if [ "$beta" = 1 ]; then read -ra run_args <<<"$(args_for $beta_suites)"; fi
    DMK_KUBERNETES_VERSION=$release DMK_TEST_MUTATING_POLICY_BETA=$beta \
      "$cargo" test --no-fail-fast "${run_args[@]}" >>"$log" 2>&1
    rc=$?
    read -r passed failed skipped < <(awk '/^test result:/ {p+=$4; f+=$6; s+=$8} END {print p+0, f+0, s+0}' "$log")
    minor=${release#v1.}; minor=${minor%%.*}
    if [ "$minor" -ge 36 ]; then recorder="MutatingAdmissionPolicy v1"
    elif [ "$beta" = 1 ]; then recorder="MutatingAdmissionPolicy v1beta1"
    else recorder="operator webhook"; fi
    verdict=passed
    if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then verdict=FAILED; status=1; fi
    line=$(printf '%-16s %-7s %4d passed %3d failed %2d skipped  %4ds  requester: %s' \
      "$v" "$verdict" "$passed" "$failed" "$skipped" "$(( $(date +%s) - start ))" "$recorder")
  fi
  echo "[matrix] $line"
  summary+=("$line")
done
echo
echo "Kubernetes matrix (logs in $out/):"
printf '  %s\n' "${summary[@]}"
exit $status
