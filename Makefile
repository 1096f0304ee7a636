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

# The control center on the embedded SQLite default, offline: `crunch tui` starts the
# engine (`crunch serve`: workers, API and web UI at http://127.0.0.1:8000) on the replay
# feed with the demo models, and shows the live leaderboard within a minute. q quits
# and stops every process it started.
demo: venv
	$(BIN)/crunch tui

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
