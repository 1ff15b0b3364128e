# mlmesh: `make run` (demo end to end on the embedded mesh) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt libs/*/pyproject.toml services/*/pyproject.toml | sha256sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: install run test test-unit test-service test-e2e lint lint-deploy proto proto-check deploy up down status bench bench-acquire bench-profile bench-serving bench-monitor bench-mesh bench-gpu test-reliability clean

install: $(STAMP)

$(STAMP):
	bash scripts/install_system_deps.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel
	$(PY) -m pip install -q -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

node_modules/.bin/buf: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## run: the whole pipeline on the bundled palmerpenguins dataset, then stop everything
run: install
	$(VENV)/bin/mlmesh demo --home .mlmesh/demo

## test: lint, contracts, unit, service (real broker and databases) and end-to-end tests
test: install node_modules/.bin/buf lint lint-deploy
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

test-service: install
	$(PY) -m pytest -q tests/service $(PYTEST_ARGS)

test-e2e: install
	$(PY) -m pytest -q tests/e2e $(PYTEST_ARGS)

## test-reliability: full size (3 kill -9 rounds per service, broker restart, 1,000 poison
## messages beside 50 concurrent experiments, gateway at 200 req/s for 60 s); `make test`
## runs the same tests at CI size
test-reliability: install
	MLMESH_RELIABILITY_SIZE=full $(PY) -m pytest -q -s -m reliability tests/reliability $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(PY) scripts/gen_proto.py --check

## lint-deploy: hadolint on every Dockerfile, checkov on the k8s manifests (own venv .venv-tools)
lint-deploy: install
	PY=$(PY) PYTHON=$(PYTHON) bash scripts/lint_deploy.sh

## proto: regenerate the Python code for protos/
proto: install
	$(PY) scripts/gen_proto.py

## deploy: regenerate deploy/, Dockerfiles and service READMEs from the topic registry
deploy: install
	$(PY) scripts/gen_deploy.py

up: install
	$(VENV)/bin/mlmesh up

down: install
	$(VENV)/bin/mlmesh down

status: install
	$(VENV)/bin/mlmesh status

bench: install
	$(PY) -m benchmarks.run

## bench-mesh: trials and train jobs per minute with 1 and 2 replicas, the mesh's overhead per
## experiment on a 100k-row dataset, event hop latency (see RELIABILITY.md)
bench-mesh: install
	$(PY) -m benchmarks.mesh

## bench-acquire: a generated 2 GB CSV converted to Parquet (MB/s, peak RSS)
bench-acquire: install
	$(PY) -m benchmarks.acquire

## bench-serving: the generated serving app against `mlflow models serve` of the same model
bench-serving: install
	$(PY) -m benchmarks.serving

## bench-monitor: prediction events/s through the monitor on Tansu, drift per window
bench-monitor: install
	$(PY) -m benchmarks.monitor

## bench-profile: profile of a 1M-row, 50-column table (seconds)
bench-profile: install
	$(PY) -m benchmarks.profile

## bench-gpu: XGBoost and CatBoost fitted through MeshModel on the CPU and, with a CUDA GPU, on it
bench-gpu: install
	$(PY) -m benchmarks.gpu

## bench-quality: mlmesh (through the mesh) vs AutoGluon and FLAML on 9 offline datasets
bench-quality: install
	$(PY) -m benchmarks.quality $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-tools .mlmesh node_modules .pytest_cache .ruff_cache
