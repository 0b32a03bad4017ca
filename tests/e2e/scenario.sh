#!/usr/bin/env bash
# The end-to-end scenario, shared by `make e2e` (a node on this machine: kubelet, containerd,
# runc) and `make e2e-kind` (a kind cluster). It uses the cluster in KUBECONFIG as a user would:
#
#   1. helm install of the chart, 2 replicas with leader election and probes, in a namespace
#      that enforces the `restricted` Pod Security level, running the image under test;
#   2. a key set created through the running Pods, and a consumer Pod (examples/consumers)
#      that mounts its Secret and prints the key's fingerprint;
#   3. a regenerate of the primary key: the consumer prints the new fingerprint (the kubelet
#      refreshes Secret volumes in place);
#   4. the leader frozen and its Pod force-deleted (it never releases its Lease), then a
#      regenerate of the secondary key: the other replica takes the Lease and does it;
#   5. a revoke: the Secret is gone.
#
# Environment:
#   E2E_IMAGE           the operator image, repository:tag, already on the node (required)
#   E2E_CONSUMER_IMAGE  an image with busybox's sh, sha256sum, cut, sleep (required)
#   E2E_API_HOST/PORT   where Pods reach the API server when no kube-proxy serves the
#                       `kubernetes` Service (make e2e); passed through the chart's extraEnv
#   E2E_ON_NODE         runs a bash script from stdin on the node, with arguments
#                       (default: `bash -s --`, the node is this machine)
#   E2E_POD_LOG_DIR     the kubelet's Pod log directory, read when `kubectl logs` cannot reach
#                       the kubelet (make e2e); unset: kubectl logs
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${E2E_IMAGE:?the operator image (repository:tag)}"
: "${E2E_CONSUMER_IMAGE:?the consumer image}"
read -r -a on_node <<<"${E2E_ON_NODE:-bash -s --}"
# Under `dmk-control-plane --node` (make e2e), the node says where Pods reach the API server and
# where the kubelet writes Pod logs.
E2E_API_HOST=${E2E_API_HOST:-${DMK_NODE_API_HOST:-}}
E2E_API_PORT=${E2E_API_PORT:-${DMK_NODE_API_PORT:-}}
E2E_POD_LOG_DIR=${E2E_POD_LOG_DIR:-${DMK_NODE_DIR:+$DMK_NODE_DIR/pod-logs}}
ns=keys-system
apps=e2e-apps
release=dmk
fullname=$release-dataminer-keys-operator
label="GitHub catalog pipeline"
started=$(date +%s)

log() { printf '[e2e %4ss] %s\n' "$(($(date +%s) - started))" "$*"; }
fail() { log "FAILED: $*"; exit 1; }

# Polls CMD... every second until it succeeds or SECONDS pass.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what: not within ${seconds}s"
    sleep 1
  done
}

pod_logs() { # NAMESPACE POD CONTAINER
  if [ -n "${E2E_POD_LOG_DIR:-}" ]; then
    local uid
    uid=$(kubectl -n "$1" get pod "$2" -o jsonpath='{.metadata.uid}' 2>/dev/null || true)
    # CRI log lines: TIME STREAM TAG MESSAGE.
    cat "$E2E_POD_LOG_DIR/$1_$2_$uid/$3/"*.log 2>/dev/null | cut -d' ' -f4-
  else
    kubectl -n "$1" logs "$2" -c "$3" 2>/dev/null
  fi
}

diagnose() {
  local status=$?
  [ "$status" -eq 0 ] && return
  log "diagnostics after a failure (exit $status)"
  kubectl get nodes -o wide || true
  kubectl get pods -A -o wide || true
  kubectl -n "$ns" get lease "$fullname" -o yaml || true
  kubectl get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -40 || true
  for pod in $(kubectl -n "$ns" get pods -o name 2>/dev/null); do
    log "last lines of ${pod#pod/}"
    pod_logs "$ns" "${pod#pod/}" operator | tail -20 || true
  done
}
trap diagnose EXIT

fingerprint_in_secret() {
  kubectl -n "$apps" get secret catalog-ci-keys -o jsonpath='{.data.DATAMINER_TOKEN}' \
    | base64 -d | sha256sum | cut -c1-16
}
consumer_pod() {
  kubectl -n "$apps" get pods -l app=catalog-publisher --field-selector=status.phase=Running \
    -o jsonpath='{.items[0].metadata.name}'
}
consumer_printed() { # FINGERPRINT
  pod_logs "$apps" "$(consumer_pod)" publisher | grep -q "DATAMINER_TOKEN sha256 $1"
}
leader() { kubectl -n "$ns" get lease "$fullname" -o jsonpath='{.spec.holderIdentity}'; }
revision_is() { # SLOT REVISION
  [ "$(kubectl -n "$apps" get dmks catalog-ci -o jsonpath="{.status.$1.revision}")" = "$2" ]
}

log "1. helm install, 2 replicas, Pod Security 'restricted', image $E2E_IMAGE"
for n in "$ns" "$apps"; do
  kubectl create namespace "$n"
  kubectl label namespace "$n" pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/enforce-version=latest
done
extra=()
if [ -n "${E2E_API_HOST:-}" ]; then
  extra+=(--set-json "extraEnv=[{\"name\":\"KUBERNETES_SERVICE_HOST\",\"value\":\"$E2E_API_HOST\"},{\"name\":\"KUBERNETES_SERVICE_PORT\",\"value\":\"${E2E_API_PORT:-443}\"}]")
fi
helm install "$release" "$root/charts/dataminer-keys-operator" -n "$ns" \
  --set image.repository="${E2E_IMAGE%:*}" --set image.tag="${E2E_IMAGE##*:}" \
  --set image.pullPolicy=Never --set replicaCount=2 "${extra[@]}" --wait --timeout 5m
kubectl -n "$ns" get pods -o wide
for pod in $(kubectl -n "$ns" get pods -l app.kubernetes.io/name=dataminer-keys-operator -o name); do
  read -r phase ready image image_id < <(kubectl -n "$ns" get "$pod" -o \
    jsonpath='{.status.phase} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].image} {.status.containerStatuses[0].imageID}{"\n"}')
  [ "$phase" = Running ] && [ "$ready" = true ] || fail "$pod is $phase, ready=$ready"
  case "$image" in *"$E2E_IMAGE") ;; *) fail "$pod runs $image, not $E2E_IMAGE" ;; esac
  log "${pod#pod/} Running and Ready, image $image ($image_id)"
done
wait_for "a replica leads" 60 test -n "$(leader)"
first_leader=$(leader)
log "leader: $first_leader"

log "2. a key set and a consumer Pod that mounts its Secret"
# The CRD is one of the release's templates: the API server may still be setting up its
# handler for a moment after `helm install --wait` returns ("There can be a delay ...").
wait_for "the API serves DataMinerKeySets" 60 kubectl -n "$apps" apply -f "$root/examples/organization-keyset.yaml"
wait_for "catalog-ci Ready" 60 kubectl -n "$apps" wait dmks/catalog-ci --for=condition=Ready --timeout=1s
kubectl -n "$apps" get dmks catalog-ci
sed -e "s|image: busybox:1.36|image: $E2E_CONSUMER_IMAGE\n          imagePullPolicy: Never|" \
  "$root/examples/consumers/deployment-mounted-keys.yaml" | kubectl -n "$apps" apply -f -
kubectl -n "$apps" rollout status deployment/catalog-publisher --timeout=120s
first=$(fingerprint_in_secret)
wait_for "the consumer prints the primary key's fingerprint $first" 60 consumer_printed "$first"
log "consumer $(consumer_pod) reads the primary key: sha256 $first"

log "3. regenerate the primary key"
t0=$(date +%s)
kubectl -n "$apps" patch dmks catalog-ci --type merge \
  -p "{\"spec\":{\"regenerate\":{\"primary\":{\"revision\":2,\"confirmLabel\":\"$label\"}}}}"
wait_for "status records primary revision 2" 60 revision_is primary 2
second=$(fingerprint_in_secret)
[ "$second" != "$first" ] || fail "the primary key did not change"
log "Secret holds a new primary key (sha256 $second) after $(($(date +%s) - t0))s"
wait_for "the consumer prints the new fingerprint" 180 consumer_printed "$second"
log "consumer reads the rotated key: sha256 $second, $(($(date +%s) - t0))s after the request"

log "4. the leader $first_leader frozen and its Pod force-deleted; a regenerate meanwhile"
uid=$(kubectl -n "$ns" get pod "$first_leader" -o jsonpath='{.metadata.uid}')
"${on_node[@]}" STOP "$uid" <"$root/tests/e2e/signal-pod.sh"
kubectl -n "$ns" delete pod "$first_leader" --grace-period=0 --force 2>&1 | grep -v "^Warning" || true
"${on_node[@]}" KILL "$uid" <"$root/tests/e2e/signal-pod.sh" || log "(the kubelet had already stopped it)"
t0=$(date +%s)
kubectl -n "$apps" patch dmks catalog-ci --type merge \
  -p "{\"spec\":{\"regenerate\":{\"secondary\":{\"revision\":2,\"confirmLabel\":\"$label\"}}}}"
wait_for "the other replica regenerates the secondary key" 90 revision_is secondary 2
new_leader=$(leader)
[ -n "$new_leader" ] && [ "$new_leader" != "$first_leader" ] || fail "the Lease is held by '$new_leader'"
log "$new_leader took over and regenerated the secondary key $(($(date +%s) - t0))s after the request"
kubectl -n "$ns" rollout status deployment/"$fullname" --timeout=120s

log "5. revoke"
kubectl -n "$apps" patch dmks catalog-ci --type merge \
  -p "{\"spec\":{\"revoke\":{\"confirmLabel\":\"$label\"}}}"
wait_for "catalog-ci Revoked" 60 kubectl -n "$apps" wait dmks/catalog-ci --for=condition=Revoked --timeout=1s
wait_for "the Secret deleted" 30 bash -c "! kubectl -n $apps get secret catalog-ci-keys"
kubectl -n "$apps" get events --field-selector involvedObject.name=catalog-ci \
  -o custom-columns=REASON:.reason,FROM:.reportingInstance,MESSAGE:.message --sort-by=.metadata.creationTimestamp \
  2>/dev/null || kubectl -n "$apps" get events
log "passed in $(($(date +%s) - started))s"
