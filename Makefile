# rawproxy developer commands. `make demo` and `make test` work as the first command on a fresh clone:
# they create .venv and install into it once (the stamp below), and again only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SRC := rawproxy tests bench
INSTALL := $(PY) -m pip install --quiet -e '.[fast]' --group test --group conformance --group lint

.PHONY: install check format test unit integration conformance e2e demo load bench bench-quick bench-deps build clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"

# Order-only on the interpreter: its mtime is the base Python's, never a reason to reinstall.
$(STAMP): pyproject.toml | $(PY)
	$(INSTALL)
	touch $@

install: | $(PY)  ## the package (editable, with uvloop) plus the test, conformance and lint tools
	$(INSTALL)
	touch $(STAMP)

check: $(STAMP)  ## formatting, lint, types
	$(PY) -m ruff format --check $(SRC)
	$(PY) -m ruff check $(SRC)
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff format $(SRC)
	$(PY) -m ruff check --fix $(SRC)

test: $(STAMP)  ## everything: unit, integration, conformance (official SDKs), e2e (the real Claude Code CLI)
	$(PY) -m pytest

unit: $(STAMP)  ## everything not marked integration, conformance or e2e (sans-I/O, no sockets); tests/README.md
	$(PY) -m pytest -m "not integration and not conformance and not e2e"

integration: $(STAMP)  ## real sockets on 127.0.0.1 (the `integration` marker)
	$(PY) -m pytest -m integration

conformance: $(STAMP)
	$(PY) -m pytest tests/conformance

e2e: $(STAMP)
	$(PY) -m pytest tests/e2e

demo: $(STAMP)  ## the fake upstream and the proxy, one streamed tool call, TTFT direct and proxied
	$(PY) -m rawproxy demo

BENCH_DEPS = $(PY) -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['dependency-groups']['bench']))"

bench-deps: $(STAMP)  ## matplotlib (the `bench` dependency group), installed into the venv if missing
	@$(PY) -c "import matplotlib" 2>/dev/null || $(PY) -m pip install --quiet $$($(BENCH_DEPS))

load: $(STAMP)  ## the load test at full length: 500 streaming clients for 30 s through one process (issue 6)
	RAWPROXY_LOAD_SECONDS=30 $(PY) -m pytest -q -s -p no:randomly tests/server/test_load.py

bench: bench-deps  ## the full bench suite (a few minutes): table, JSON and chart in bench/results/
	$(PY) bench/run.py

bench-quick: bench-deps  ## the bench suite with reduced counts, about two minutes (now with the paced arm)
	$(PY) bench/run.py --quick

build:
	$(PY) -m pip wheel --no-deps -w dist .

clean:
	rm -rf dist build .pytest_cache .mypy_cache .ruff_cache .e2e
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
