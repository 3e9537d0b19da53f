# callcenter-monitor: every target does its own set-up from a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install tools lint typecheck unit test bench run clean dashboards docs

help:
	@echo "make run    - the monitor on a local simulated feed (see README)"
	@echo "make test   - lint, type-check and all tests (sets everything up itself)"
	@echo "make bench  - benchmarks; figures go to docs/performance.md"

# The venv is rebuilt whenever the dependency list changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

# Every tool the tests use beyond the venv: each deploy/*/ensure-tools.sh installs or builds
# its own (Debian packages, Go-built binaries cached outside the repository), idempotently.
tools:
	set -e; for script in deploy/*/ensure-tools.sh; do bash "$$script"; done

lint: $(STAMP)
	$(BIN)/ruff check monitor tests scripts grafana
	$(BIN)/ruff format --check monitor tests scripts grafana

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collects nothing; that is not a failure of the code.
# A fixed hash seed makes set iteration, and so every test run, reproducible.
test: lint typecheck tools
	PYTHONHASHSEED=0 $(BIN)/pytest tests; status=$$?; if [ $$status -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$status

bench: $(STAMP)
	$(BIN)/python scripts/bench_report.py --events 1000000 --output docs/performance.md
	$(BIN)/python scripts/bench_stream.py --events 1000000 --slow-events 300000 --output docs/performance.md
	$(BIN)/python scripts/bench_sizing.py --output docs/performance.md

# The boards are code: regenerate the committed JSON after editing grafana/dashboards.py.
# The Helm chart carries copies of the boards and rules (Helm cannot read outside the chart).
dashboards: $(STAMP)
	$(BIN)/python grafana/dashboards.py
	$(BIN)/python scripts/helm_assets.py

# The settings table is code too: regenerate docs/settings.md after editing the settings models.
docs: $(STAMP)
	$(BIN)/python -c 'from monitor.pipeline.settings_flags import settings_document as d; open("docs/settings.md", "w").write(d())'

# The local Prometheus and Alertmanager are the Debian packages `tools` installs.
run: $(STAMP)
	bash deploy/prometheus/ensure-tools.sh
	bash scripts/run-local.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis var
