# Every target sets up what it needs; the stamp makes a second run skip the install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dqnkit-installed
ARGS ?=

.PHONY: install train test test-fast test-sweeps lint format docs bench clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# --no-deps: the lock is complete, and DI-engine's setuptools<=66.1.1 pin would otherwise block torch 2.13.
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

train: $(STAMP)
	$(BIN)/dqn-train --config configs/lunarlander.py $(ARGS)

# Everything: in-process unit tests first, then the real commands end to end.
test: $(STAMP)
	$(BIN)/python -m pytest --durations=15 $(ARGS)

# The unit tests and each command's one-line error contract from the command line.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(ARGS)
	$(BIN)/python -m pytest tests/e2e -m contract $(ARGS)

# The slower tier: each command signalled at 30 moments of its life, kill -9 at random moments, fuzzed files and
# options (about 8 minutes; .ci/run runs it after test).
test-sweeps: $(STAMP)
	$(BIN)/python -m pytest tests/sweeps $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts configs
	$(BIN)/ruff format --check src tests scripts configs
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests scripts configs
	$(BIN)/ruff format src tests scripts configs

# The docs site, strict: a broken link or a page missing from the navigation fails the build.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir build/site

bench: $(STAMP)
	$(BIN)/python scripts/bench_train.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache src/*.egg-info build
