# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SAMPLES ?= sample_logs
OUT    ?= out

.PHONY: run test lint bench clean setup

$(BIN)/evtxdoc: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,python-evtx]'
	@touch $@

setup: $(BIN)/evtxdoc

## Set up, then analyze the bundled samples (inventory on the terminal and as JSON in out/).
run: setup
	@mkdir -p $(OUT)
	$(BIN)/evtxdoc analyze $(SAMPLES) --format json -o $(OUT)/inventory.json
	$(BIN)/evtxdoc analyze $(SAMPLES) --format terminal

## Set up, lint, and run the whole test suite.
test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
