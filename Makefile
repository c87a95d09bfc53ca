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
	@if [ -z "$$(find $(SAMPLES) -type f ! -name '*.md' ! -name '*.yaml' 2>/dev/null | head -1)" ]; then \
	  echo "$(SAMPLES)/ holds no log bundle yet (evtxdoc synth fills it); nothing to analyze."; \
	  echo "Try: $(BIN)/evtxdoc analyze ../shared/real-evtx"; \
	else \
	  $(BIN)/evtxdoc analyze $(SAMPLES) --format json -o $(OUT)/inventory.json && \
	  $(BIN)/evtxdoc analyze $(SAMPLES) --format terminal && \
	  echo "inventory written to $(OUT)/inventory.json"; \
	fi

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
