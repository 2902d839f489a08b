# Everything runs from a project-local virtual environment, created on demand.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install test lint typecheck browser check bench demo clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The full check CI runs: lint, firmware type check, then every test (CPython and the
# MicroPython unix port; the report test drives a real headless Chromium).
test: lint typecheck browser
	$(BIN)/pytest -q

# Debian's Chromium for the report test (tests/test_report_browser.py); installed with
# apt-get when missing (as root, or through sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

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
