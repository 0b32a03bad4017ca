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
## control plane started here (Ctrl-C stops everything).
run: control-plane
	@$(CARGO) build --workspace --bins
	@bin=$$(bash tests/control-plane/build.sh 2>/dev/null | tail -n1); \
	if [ -n "$${KUBECONFIG:-}" ] && "$$bin/kubectl" --request-timeout=5s get --raw=/readyz >/dev/null 2>&1; then \
	  echo "[run] using the cluster in KUBECONFIG=$$KUBECONFIG"; \
	  "$$bin/kubectl" apply --server-side --field-manager=dataminer-keys-operator -f crds/; \
	  echo "[run] the operator binary does not exist yet: CRDs are installed, nothing else to run"; \
	else \
	  [ -n "$${KUBECONFIG:-}" ] && echo "[run] KUBECONFIG=$$KUBECONFIG does not answer; starting a local control plane"; \
	  echo "[run] the operator binary does not exist yet: this brings up the control plane with the CRDs"; \
	  exec target/debug/dmk-control-plane --state-dir "$(DEV_STATE)" --crds crds; \
	fi

## Build (or find cached) kube-apiserver, kube-controller-manager, kubectl and etcd.
control-plane:
	@bash tests/control-plane/build.sh >/dev/null

## Regenerate the CRD from the Rust types (a test fails when the committed file drifts).
crds:
	$(CARGO) run --quiet --bin crdgen > $(CRD)
