# Two commands for a fresh machine: `make demo` (run the product) and `make test`.
# Both create the virtual environment they need in .venv on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: venv demo test lint format clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "crunch-control needs Python >= 3.11; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

# Runs what exists so far on the embedded SQLite default, offline: the schema, the
# configuration check, two hours of replayed real candles on the tape, then the live
# market-data worker (Ctrl-C stops it). Grows into `crunch tui`.
demo: venv
	$(BIN)/crunch db upgrade
	$(BIN)/crunch config check
	$(BIN)/crunch feeds backfill --since 2h
	$(BIN)/crunch feeds status
	$(BIN)/crunch feeds tail BTC --limit 5
	$(BIN)/crunch worker market-data

test: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .crunch .pytest_cache .ruff_cache
