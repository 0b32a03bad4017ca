#!/usr/bin/env bash
# Writes kubernetes/<minor>/go.mod and go.sum for one Kubernetes release, the way the pinned build
# wants it: k8s.io/kubernetes at that tag, and each of its staging modules (which the release points
# at ./staging, a path a consumer cannot resolve) replaced by its published v0.<minor>.<patch> tag.
# Run it when adding a minor or moving a patch release; commit what it writes.
#   usage: pin-kubernetes.sh v1.37.2
set -euo pipefail

version=${1:?usage: pin-kubernetes.sh vMAJOR.MINOR.PATCH}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
minor=${version#v}; minor=${minor%.*}          # 1.37
staging_tag="v0.${version#v1.}"                 # v0.37.2
dir="$here/kubernetes/$minor"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

upstream=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
[ -f "$upstream" ] || { echo "no go.mod for k8s.io/kubernetes@$version" >&2; exit 1; }

mkdir -p "$dir"
{
  echo "// Pinned build of kube-apiserver, kube-controller-manager, kubectl and the test node's kube-scheduler"
  echo "// and kubelet $version for tests."
  echo "// Written by ../../pin-kubernetes.sh: the staging modules are replaced by their $staging_tag tags."
  echo "module dataminer-keys-operator/control-plane/kubernetes"
  echo
  grep -E '^(go|godebug) ' "$upstream"
  echo
  echo "tool ("
  for cmd in kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet; do echo "	k8s.io/kubernetes/cmd/$cmd"; done
  echo ")"
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  echo "replace ("
  grep -E '=> \./staging/' "$upstream" | awk -v tag="$staging_tag" '{print "\t" $1 " => " $1 " " tag}'
  echo ")"
} >"$dir/go.mod"
rm -f "$dir/go.sum"
(cd "$dir" && go mod tidy)
echo "wrote $dir/go.mod and go.sum" >&2
