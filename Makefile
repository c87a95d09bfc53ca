# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SAMPLE ?= sample_logs/multi-device-two-connectors/bundle
OUT    ?= out

.PHONY: run test lint bench clean setup samples docs

$(BIN)/evtxdoc: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,python-evtx]'
	@touch $@

setup: $(BIN)/evtxdoc

## Set up, then analyze a bundled sample (three devices, two connectors, one failure).
run: setup
	@mkdir -p $(OUT)
	$(BIN)/evtxdoc analyze $(SAMPLE) -o $(OUT)/report.html
	$(BIN)/evtxdoc analyze $(SAMPLE) -o $(OUT)/report.json
	$(BIN)/evtxdoc analyze $(SAMPLE) --format terminal
	@echo "report written to $(OUT)/report.html (open it in a browser), JSON to $(OUT)/report.json"

## Regenerate sample_logs/ from their scenarios (byte-identical unless the generator changed).
samples: setup
	EVTXDOC=$(CURDIR)/$(BIN)/evtxdoc sample_logs/regenerate.sh

## Regenerate the generated docs (CLI reference, report JSON Schema).
docs: setup
	$(BIN)/python -m evtxdoc.cli.docs > docs/cli-reference.md
	$(BIN)/python -m evtxdoc.report.schema > docs/report.schema.json

## Set up, lint, and run the whole test suite.
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/synth.py
	$(BIN)/python benchmarks/correlate.py
	$(BIN)/python benchmarks/rules.py
	$(BIN)/python benchmarks/report.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/fleet.py --sizes 250000 1000000 --per-device 1000
	$(BIN)/python benchmarks/svclog.py --rounds 3

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
