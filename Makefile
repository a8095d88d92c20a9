# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit integration audit clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## Set up (first time) and run ldis on embedded defaults: http://127.0.0.1:8000/outbox
run: $(STAMP)
	$(BIN)/ldis run

## Set up (first time) and run every check: ruff, mypy, import contracts, all tests.
test: $(STAMP) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check ldis workers tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

## Known vulnerabilities in the installed dependencies (pip-audit; .ci/run runs it after
## `make test`). Exceptions: .pip-audit-ignore, each justified in docs/security.md.
audit: $(STAMP)
	.ci/run audit

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
