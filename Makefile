# jobdeck: `make run` starts the whole platform on embedded defaults; `make test` runs every test.
#
# Every target installs from requirements.lock: every package, transitive ones included, pinned
# with its hashes for CPython 3.11 on Linux x86_64; jobdeck itself is then installed editable
# without dependencies. A changed lock reinstalls. After changing install_requires or an extra in
# setup.cfg, run `make lock` (on CPython 3.11, Linux x86_64) and commit requirements.lock: it
# resolves install_requires plus the test, postgres, embedded and lint extras from setup.cfg,
# keeping every pin setup.cfg still allows; `make lock UPGRADE=1` moves every pin to the newest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
LOCK_EXTRAS := test postgres embedded lint
PIP_TOOLS := pip-tools==7.6.2

.PHONY: run test lint format bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python $(LOCK) setup.cfg pyproject.toml
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)

lock: $(BIN)/python
	@$(BIN)/python -c 'import platform, sys; sys.exit(None if sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11) and sys.platform == "linux" and platform.machine() == "x86_64" else "make lock: $(LOCK) is resolved for CPython 3.11 on Linux x86_64; run it there")'
	$(BIN)/pip install --quiet '$(PIP_TOOLS)'
	CUSTOM_COMPILE_COMMAND='make lock' $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links \
		$(addprefix --extra=,$(LOCK_EXTRAS)) $(if $(UPGRADE),--upgrade) --output-file=$(LOCK) setup.cfg

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
	$(BIN)/lint-imports --no-logo

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/seed_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache
