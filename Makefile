# Every target creates .venv and installs the project when it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check bench fuzz format clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/fox up --demo examples/hello-world

test: $(STAMP)
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy
	@# each component is its own program (every one has a main.py), so one mypy run each
	@for f in examples/*/components/*/main.py; do $(BIN)/mypy --strict "$$f" || exit 1; done
	$(BIN)/lint-imports

# Property and fuzz tests with 50x their make-test budget, every fault test, then
# 50 clients for 60 s with a component instance killed every 10 s (docs/reliability.md).
fuzz: $(STAMP)
	KUBEFOX_FUZZ=long $(BIN)/python -m pytest -p no:randomly --timeout=1800 -m "fuzz or faults" tests/fuzz tests/faults
	$(BIN)/python -m tests.faults.load_with_kills --clients 50 --seconds 60 --kill-every 10

bench: $(STAMP)
	@# silent, so stdout is exactly the JSON document (progress goes to stderr)
	@$(BIN)/python -m bench

format: $(STAMP)
	$(BIN)/ruff format src tests bench examples
	$(BIN)/ruff check --fix src tests bench examples

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
