# The two commands: `make run` and `make test`. Everything else is a step they use.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
CRD := crds/dataminerkeysets.keys.dataminer.services.yaml
DEV_STATE := $(CURDIR)/.dev-cluster

.PHONY: run test control-plane crds fmt lint unit integration

## make test: everything CI checks (format, lint, CRD in sync, unit and integration tests on a
## real kube-apiserver + etcd that is built and cached first).
test: control-plane
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@mkdir -p target
	$(CARGO) test --workspace 2>&1 | tee target/test-output.log
	@awk '/^test result:/ {p+=$$4; f+=$$6; s+=$$8} END {printf "tests: %d passed, %d failed, %d skipped\n", p, f, s}' target/test-output.log

## make run: the operator against $$KUBECONFIG when that cluster answers, else against a local
## control plane started here (Ctrl-C stops everything). RUN_ARGS adds operator flags.
RUN_ARGS ?= --metrics-address 127.0.0.1:8080
run: control-plane
	@$(CARGO) build --workspace --bins
	@bin=$$(bash tests/control-plane/build.sh 2>/dev/null | tail -n1); \
	if [ -n "$${KUBECONFIG:-}" ] && "$$bin/kubectl" --request-timeout=5s get --raw=/readyz >/dev/null 2>&1; then \
	  echo "[run] using the cluster in KUBECONFIG=$$KUBECONFIG; installing the CRD"; \
	  "$$bin/kubectl" apply --server-side --field-manager=dataminer-keys-install -f crds/; \
	  exec target/debug/dataminer-keys-operator $(RUN_ARGS); \
	else \
	  if [ -n "$${KUBECONFIG:-}" ]; then echo "[run] KUBECONFIG=$$KUBECONFIG does not answer; starting a local control plane"; fi; \
	  exec target/debug/dmk-control-plane --state-dir "$(DEV_STATE)" --crds crds -- \
	    target/debug/dataminer-keys-operator $(RUN_ARGS); \
	fi

## Build (or find cached) kube-apiserver, kube-controller-manager, kubectl, etcd and helm.
control-plane:
	@bash tests/control-plane/build.sh >/dev/null

## Regenerate the CRD from the Rust types, in crds/ and in the chart (tests fail on drift).
crds:
	$(CARGO) run --quiet --bin crdgen > $(CRD)
	cp $(CRD) charts/dataminer-keys-operator/crds/
