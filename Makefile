# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit integration audit browser-deps clean

# The browser tests drive Debian's Chromium (never a downloaded browser) and load axe-core
# from the npm registry into each page; both are installed here when missing.
BROWSER_DIR := tests/integration/browser
AXE := $(BROWSER_DIR)/node_modules/axe-core/axe.min.js
CHROMIUM_PATH ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## Set up (first time) and run ldis on embedded defaults: http://127.0.0.1:8000/outbox
run: $(STAMP)
	$(BIN)/ldis run

## Set up (first time) and run every check: ruff, mypy, import contracts, all tests.
test: $(STAMP) lint browser-deps
	$(BIN)/pytest

browser-deps: $(AXE) $(CHROMIUM_PATH)

$(AXE): $(BROWSER_DIR)/package-lock.json
	npm ci --prefix $(BROWSER_DIR) --no-audit --no-fund --loglevel=error
	touch $(AXE)

$(CHROMIUM_PATH):
	$(APT_INSTALL) || ($(SUDO) apt-get update -q && $(APT_INSTALL))

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
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache test-artifacts $(BROWSER_DIR)/node_modules
