# favdesk: `make run` sets up and opens the app; `make test` sets up and runs the tests.
VENV ?= .venv
LATEST_VENV ?= .venv-latest
PYTHON ?= python3

.PHONY: run test test-latest setup test-setup demo lint lock bench clean

run: setup
	$(VENV)/bin/favdesk

demo: setup
	$(VENV)/bin/favdesk-cli demo

test: test-setup
	scripts/run-tests.sh

# The suite again on the newest versions pyproject.toml's ranges allow (what pip and pipx install).
test-latest:
	@scripts/system-deps.sh --test
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/pip install -q --disable-pip-version-check --upgrade --upgrade-strategy eager -e '.[test]'
	@$(LATEST_VENV)/bin/pip freeze --exclude-editable | grep -iE '^(redis|rq|pyside6-essentials|httpx|supabase|keyring)==' | tr '\n' ' '; echo
	VENV=$(LATEST_VENV) scripts/run-tests.sh

setup: $(VENV)/.installed
	@scripts/system-deps.sh

test-setup: $(VENV)/.installed
	@scripts/system-deps.sh --test

$(VENV)/.installed: pyproject.toml requirements.lock
	@scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.lock
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check favdesk tests benchmarks
	$(VENV)/bin/ruff format --check favdesk tests benchmarks
	$(VENV)/bin/mypy favdesk

# Every benchmark as one table, each figure beside its target (under 10 minutes on 2 cores);
# docs/benchmarks.md keeps a run and says how to read it.
bench: test-setup
	$(VENV)/bin/python -m benchmarks

# Refresh requirements.lock after changing dependencies in pyproject.toml.
lock: $(VENV)/.installed
	$(VENV)/bin/pip install -q uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) $(LATEST_VENV)
