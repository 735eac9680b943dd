# Two entry points do all the set-up: `make up` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: test lint up bundle check-bundle bench venv tools clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { sh scripts/ensure-venv.sh $(PYTHON) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

tools:
	@sh scripts/ensure-tools.sh

# Lint before the tests: a finding costs seconds to read, a suite run costs minutes.
lint: venv
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: venv tools lint
	$(BIN)/python -m pytest -q

# `make up` runs the demo on the built-in default policy; `make up DEMO=` runs the policy alone.
DEMO ?= --demo
up: venv tools
	$(BIN)/memwarden up $(DEMO)

# Re-render the committed bundle (rules/, alertmanager/, dashboards/, kubernetes/) from the default policy.
bundle: venv
	$(BIN)/memwarden generate -o .

check-bundle: venv
	$(BIN)/memwarden generate --check -o .

bench: venv tools
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist src/*.egg-info
