# The two commands: `make run` and `make test`. Everything else is a step they use.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
CRD := crds/dataminerkeysets.keys.dataminer.services.yaml
DEV_STATE := $(CURDIR)/.dev-cluster
# Where cargo puts binaries (honours CARGO_TARGET_DIR).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: run test matrix chaos bench control-plane node crds static release deny image e2e e2e-kind

## make test: everything CI checks (format, lint, the dependency policy, CRD in sync, unit and
## integration tests on a real kube-apiserver + etcd that is built and cached first, on the
## newest supported Kubernetes; then the version-sensitive suites on the others: make matrix;
## then the shipped image as Pods on a real node: make e2e). Builds the image first, which
## tests/release.rs checks.
test: control-plane node image
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@# Each library crate alone, with only its own features (the workspace build unifies them).
	$(CARGO) check -p dataminer-keys-api
	$(CARGO) check -p dataminer-keys-core
	$(CARGO) check -p dataminer-keys-plugin
	$(MAKE) --no-print-directory deny
	@mkdir -p target
	$(CARGO) test --workspace 2>&1 | tee target/test-output.log
	@# The operator suites again, with the operator holding only the Helm chart's permissions.
	DMK_TEST_AS_CHART=1 $(CARGO) test --test keyset_lifecycle --test examples \
	  --test without_cel_rules 2>&1 | tee -a target/test-output.log
	@# The benchmark, small, so it keeps working and the request budget holds (figures come
	@# from full runs: make bench).
	$(MAKE) --no-print-directory bench BENCH_PROFILE=debug BENCH_ARGS="--sets 50 --rest-seconds 10 --resync-seconds 5 --check"
	@# The suites a Kubernetes version can break, on the other supported releases (make matrix).
	MATRIX_SKIP_DEFAULT=1 bash tests/matrix.sh
	@# The image as Pods on a real node (needs root, as a kubelet does).
	$(MAKE) --no-print-directory e2e
	@awk '/^test result:/ {p+=$$4; f+=$$6; s+=$$8} END {printf "tests: %d passed, %d failed, %d skipped\n", p, f, s}' \
	  target/test-output.log target/matrix/v*.log

## make matrix: the suites a Kubernetes version can break (lifecycle, admission and CEL,
## integrity, who asked, the chart's install and RBAC) on a local control plane of every pinned
## release, 1.34 to 1.37, one line per release. MATRIX_VERSIONS / MATRIX_SUITES narrow it.
matrix: control-plane
	bash tests/matrix.sh

## make chaos: the full chaos suite (tests/chaos.rs): 1,000 key sets, 25 operator kills with 3
## failovers, 2 kube-apiserver and 1 etcd crash. `make test` runs a reduced one. Replay a
## schedule with DMK_CHAOS_SEED=<the seed it printed>.
chaos: control-plane
	DMK_CHAOS_SETS=$${DMK_CHAOS_SETS:-1000} DMK_CHAOS_KILLS=$${DMK_CHAOS_KILLS:-25} \
	DMK_CHAOS_FAILOVERS=$${DMK_CHAOS_FAILOVERS:-3} DMK_CHAOS_API_RESTARTS=$${DMK_CHAOS_API_RESTARTS:-2} \
	DMK_CHAOS_ETCD_RESTARTS=$${DMK_CHAOS_ETCD_RESTARTS:-1} DMK_CHAOS_SETTLE_SECS=$${DMK_CHAOS_SETTLE_SECS:-600} \
	  $(CARGO) test --test chaos -- --nocapture

## make bench: the operator side by side with a bare client doing only the writes an operator
## must, on one API server ($$KUBECONFIG if it answers, else a local control plane), release
## build. Prints a table and writes JSON under target/bench/. BENCH_ARGS="--sets 10000" etc.
BENCH_PROFILE ?= release
BENCH_ARGS ?=
bench: control-plane
	$(CARGO) build $(if $(filter release,$(BENCH_PROFILE)),--release) -p dataminer-keys-operator \
	  -p dmk-bench --bins
	$(TARGET_DIR)/$(BENCH_PROFILE)/dmk-bench --out target/bench $(BENCH_ARGS)

## make run: the operator against $$KUBECONFIG when that cluster answers, else against a local
## control plane started here (Ctrl-C stops everything). RUN_ARGS adds operator flags.
RUN_ARGS ?= --metrics-address 127.0.0.1:8080
run: control-plane
	@$(CARGO) build --workspace --bins
	@exec $(TARGET_DIR)/debug/dmk-control-plane --prefer-kubeconfig --state-dir "$(DEV_STATE)" \
	    --crds crds --chart charts/dataminer-keys-operator -- \
	  $(TARGET_DIR)/debug/dataminer-keys-operator $(RUN_ARGS)

## Build (or find cached) kube-apiserver, kube-controller-manager, kubectl, etcd and helm,
## Prometheus' rule checker (the chart's PrometheusRule is checked with it), kstatus and Argo
## CD's Lua runtime (the GitOps health checks are checked with them) and krew (the release's
## plugin manifest is installed with it).
control-plane:
	@bash tests/control-plane/build.sh >/dev/null
	@bash tests/control-plane/build-promrules.sh >/dev/null
	@bash tests/control-plane/build-health.sh >/dev/null
	@bash tests/control-plane/build-krew.sh >/dev/null

## The test node (make e2e, tests/control-plane/tests/node_teardown.rs): kubelet,
## kube-scheduler, containerd, the CNI plugins and the pause image, built and cached; Debian's
## runc, buildah and busybox-static installed when missing.
node:
	@bash tests/control-plane/install-node-packages.sh
	@bash tests/control-plane/build-node.sh >/dev/null

## The dependency policy in deny.toml: licenses, banned crates, sources (cargo-deny, pinned and
## cached). Advisories need the network: `cargo deny check advisories` where there is one.
deny:
	@deny=$$(bash tests/control-plane/build-cargo-deny.sh | tail -n1); \
	"$$deny" --version; "$$deny" check licenses bans sources

## Regenerate the CRD from the Rust types, in crds/ and in the chart (tests fail on drift).
crds:
	$(CARGO) run --quiet --bin crdgen > $(CRD)
	cp $(CRD) charts/dataminer-keys-operator/files/

## The static binaries: the operator (the container image ships the same) and the plugin. There
## is no Docker engine on our CI machines, so CI builds the fully static target with glibc (the
## Dockerfile uses musl) and checks it.
STATIC_TARGET := x86_64-unknown-linux-gnu
static:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --locked \
	  --target $(STATIC_TARGET) --bin dataminer-keys-operator --bin kubectl-dmkeys
	@for bin in $(TARGET_DIR)/$(STATIC_TARGET)/release/{dataminer-keys-operator,kubectl-dmkeys}; do \
	  if readelf -d "$$bin" | grep -q NEEDED; then echo "[static] $$bin needs shared libraries" >&2; exit 1; fi; \
	  "$$bin" --version; ls -l "$$bin"; \
	done

## make release: what a GitHub release of v<version> carries, under target/release-artifacts/
## (the static operator, the plugin's krew archive and manifest, the packaged chart, the CRD
## bundle, SHA256SUMS), then checked (.ci/check-release.sh). docs/release.md says how to cut one.
RELEASE_DIR := target/release-artifacts
release: control-plane static
	bash .ci/release.sh --out $(RELEASE_DIR) \
	  --operator $(TARGET_DIR)/$(STATIC_TARGET)/release/dataminer-keys-operator \
	  --plugin $(TARGET_DIR)/$(STATIC_TARGET)/release/kubectl-dmkeys
	bash .ci/check-release.sh $(RELEASE_DIR)

## The container image, from the Dockerfile, with no registry: the static operator (make static)
## on an empty base, written as an OCI archive that tests/release.rs checks and make e2e runs.
## buildah builds it (our CI; `apt-get install buildah`), else docker.
## Tagged as the chart's default image (repository and appVersion), so the chart runs it as is.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
IMAGE ?= ghcr.io/dataminer-keys-operator/dataminer-keys-operator:$(VERSION)
IMAGE_ARCHIVE := $(TARGET_DIR)/image/dataminer-keys-operator.oci.tar
image: static
	@command -v buildah >/dev/null || command -v docker >/dev/null || \
	  bash tests/control-plane/install-node-packages.sh buildah
	bash .ci/build-image.sh --binary $(TARGET_DIR)/$(STATIC_TARGET)/release/dataminer-keys-operator \
	  --tag $(IMAGE) --out $(IMAGE_ARCHIVE)

## make e2e: the shipped image as Pods on a real node on this machine (kubelet, containerd and
## runc; tests/control-plane/src/node), through tests/e2e/scenario.sh: helm install with 2
## replicas, a key set created, regenerated and revoked through the Pods, the leader's Pod
## killed, a consumer Pod reading the rotated key. Needs root. The node's teardown is checked.
CONSUMER_IMAGE := dmk.local/consumer:e2e
CONSUMER_ARCHIVE := $(TARGET_DIR)/image/consumer.oci.tar
e2e: image control-plane node
	bash tests/e2e/consumer-image.sh --tag $(CONSUMER_IMAGE) --out $(CONSUMER_ARCHIVE)
	$(CARGO) build --quiet -p dmk-control-plane --bin dmk-control-plane
	@mkdir -p target
	$(TARGET_DIR)/debug/dmk-control-plane --node --image $(IMAGE_ARCHIVE) --image $(CONSUMER_ARCHIVE) -- \
	  env E2E_IMAGE=$(IMAGE) E2E_CONSUMER_IMAGE=$(CONSUMER_IMAGE) bash tests/e2e/scenario.sh 2>&1 | tee target/e2e.log

## make e2e-kind: the same scenario on a kind cluster, for machines with a Docker engine (needs
## Docker, kind, helm, kubectl, busybox-static; not on our CI). Pods reach the API server through
## the kubernetes Service there, and the scenario signals Pods inside the kind node.
KIND_CLUSTER ?= dmk-e2e
e2e-kind: image
	bash tests/e2e/consumer-image.sh --tag $(CONSUMER_IMAGE) --out $(CONSUMER_ARCHIVE)
	kind create cluster --name $(KIND_CLUSTER) --kubeconfig $(CURDIR)/.kind-kubeconfig
	@export KUBECONFIG=$(CURDIR)/.kind-kubeconfig; \
	trap 'kind delete cluster --name $(KIND_CLUSTER)' EXIT; \
	kind load image-archive $(IMAGE_ARCHIVE) --name $(KIND_CLUSTER) && \
	kind load image-archive $(CONSUMER_ARCHIVE) --name $(KIND_CLUSTER) && \
	E2E_IMAGE=$(IMAGE) E2E_CONSUMER_IMAGE=$(CONSUMER_IMAGE) \
	E2E_ON_NODE="docker exec -i $(KIND_CLUSTER)-control-plane bash -s --" \
	  bash tests/e2e/scenario.sh 2>&1 | tee target/e2e-kind.log
