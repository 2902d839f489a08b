# Everything runs from a project-local virtual environment, created on demand.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install test lint typecheck check bench demo clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The full check CI runs: lint, firmware type check, then every test (CPython and the
# MicroPython unix port).
test: lint typecheck
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check firmware host tests bench

typecheck: $(STAMP)
	$(BIN)/python tools/typecheck_firmware.py

check: test

bench: $(STAMP)
	$(BIN)/python -m bench.run --out docs/benchmarks.md

demo: $(STAMP)
	$(BIN)/retrostep demo

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .mypy_cache
