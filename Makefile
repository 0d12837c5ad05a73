PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: serve test lint typecheck unit bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

serve: $(STAMP)
	$(BIN)/tollway serve $(ARGS)

lint: $(DEVSTAMP)
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

typecheck: $(DEVSTAMP)
	$(BIN)/mypy

unit: $(DEVSTAMP)
	$(BIN)/pytest -q $(ARGS)

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
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
