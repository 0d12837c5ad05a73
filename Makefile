PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
# Every Python package, runtime, dev and build, is pinned in constraints.txt (`make lock`
# refreshes it); the agent CLIs the e2e tests drive are pinned in tests/e2e/npm.
LOCK := constraints.txt
PIP_VERSION := 26.3
NPM_DIR := tests/e2e/npm
NPMSTAMP := $(NPM_DIR)/node_modules/.installed
PIP := $(BIN)/pip install --quiet --no-build-isolation -c $(LOCK)

.PHONY: serve test lint typecheck unit bench clean lock e2e-deps browser-deps

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)

$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) hatchling editables
	$(PIP) -e .
	@$(BIN)/python scripts/check_lock.py $(LOCK)
	touch $@

$(DEVSTAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) hatchling editables
	$(PIP) -e '.[dev]'
	@$(BIN)/python scripts/check_lock.py $(LOCK)
	touch $@ $(STAMP)

# Resolve every dependency afresh in a throw-away venv and write the pins to constraints.txt.
lock:
	rm -rf .venv-lock && $(PY) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet pip==$(PIP_VERSION)
	.venv-lock/bin/pip install --quiet hatchling editables '.[dev]'
	( echo "# Pinned versions of every Python package Tollway installs (runtime, dev, build)."; \
	  echo "# Used by make serve and make test; refresh with: make lock"; \
	  .venv-lock/bin/pip freeze --all --exclude-editable | grep -viE '^(tollway|pip|setuptools|wheel)[ =@]' ) > $(LOCK)
	rm -rf .venv-lock

$(NPMSTAMP): $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	@command -v npm >/dev/null || (echo "npm is needed for the e2e tests (Node.js 20+)"; exit 1)
	npm ci --no-audit --no-fund --loglevel=error --prefix $(NPM_DIR)
	touch $@

e2e-deps: $(NPMSTAMP)

# The dashboard's browser tests drive Debian's chromium through Playwright (whose own
# browser download is not used): installed here when missing, as root on a fresh machine.
browser-deps:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

serve: $(STAMP)
	$(BIN)/tollway serve $(ARGS)

lint: $(DEVSTAMP)
	$(BIN)/ruff check src tests scripts $(wildcard bench)
	$(BIN)/ruff format --check src tests scripts $(wildcard bench)

typecheck: $(DEVSTAMP)
	$(BIN)/mypy

# Three workers on two cores: most of the suite waits on subprocesses (gateways, the agent
# CLIs, browsers), and a file's tests stay on one worker (their module fixtures start once).
PYTEST_WORKERS ?= 3
unit: $(DEVSTAMP) $(NPMSTAMP) browser-deps
	# Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set (this machine sets it):
	# without it every worker rewrites every test's asserts and every gateway the tests start
	# compiles tollway afresh (collection 35 s -> 23 s here).
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile $(ARGS)

test: lint typecheck unit

bench: $(DEVSTAMP) bench-venv bench-litellm bench-wrk
	$(BENCH_VENV)/bin/python -m bench.run $(ARGS)

# The bench harness's tools (granian, py-spy, matplotlib, orjson, httpx) and LiteLLM live
# in their own git-ignored venvs under bench/; wrk comes from Debian's packages.
BENCH_VENV := bench/.venv-tools
LITELLM_VENV := bench/.venv-litellm
.PHONY: bench-quick bench-venv bench-litellm bench-wrk bench-report

bench-quick: $(DEVSTAMP) bench-venv bench-litellm bench-wrk
	$(BENCH_VENV)/bin/python -m bench.run --quick $(ARGS)

bench-venv: | $(BIN)/python
	@if [ ! -f $(BENCH_VENV)/.installed ] || [ pyproject.toml -nt $(BENCH_VENV)/.installed ] \
	    || [ bench/requirements-tools.txt -nt $(BENCH_VENV)/.installed ]; then \
	  $(PY) -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install --quiet --upgrade pip && \
	  $(BENCH_VENV)/bin/pip install --quiet -e . -r bench/requirements-tools.txt && \
	  touch $(BENCH_VENV)/.installed; fi

# litellm[proxy]==1.109.1 asks for a certifi the registry lacks: install it without its
# dependencies, then its proxy requirements with certifi and litellm-proxy-extras forced.
bench-litellm:
	@if [ ! -f $(LITELLM_VENV)/.installed ]; then \
	  $(PY) -m venv $(LITELLM_VENV) && $(LITELLM_VENV)/bin/pip install --quiet --upgrade pip && \
	  $(LITELLM_VENV)/bin/pip install --quiet --no-deps 'litellm==1.109.1' && \
	  $(LITELLM_VENV)/bin/python bench/litellm_reqs.py > $(LITELLM_VENV)/requirements.txt && \
	  $(LITELLM_VENV)/bin/pip install --quiet -r $(LITELLM_VENV)/requirements.txt && \
	  touch $(LITELLM_VENV)/.installed; fi

bench-wrk:
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)

bench-report: bench-venv
	$(BENCH_VENV)/bin/python -m bench.report bench/results/latest.json

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache $(NPM_DIR)/node_modules
