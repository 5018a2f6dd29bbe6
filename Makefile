# The two commands at the top of the README: `make up` and `make test`. Both build .venv themselves.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up down test lint fmt bench venv services clean

$(STAMP): pyproject.toml setup.py src/juanie/engines/local/gateway/_fasthttp.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@if [ -f examples/microshop/requirements.txt ]; then $(BIN)/python -m pip install --quiet -r examples/microshop/requirements.txt; fi
	@touch $(STAMP)

venv: $(STAMP)

# The demo's source repository lives outside the data directory, in a directory the server lets admins use as a
# local repository (JUANIE_LOCAL_REPO_ROOTS; nothing is allowed by default).
DEMO_DIR ?= $(CURDIR)/.juanie-demo

up: $(STAMP)
	@JUANIE_LOCAL_REPO_ROOTS="$(DEMO_DIR)$${JUANIE_LOCAL_REPO_ROOTS:+:$$JUANIE_LOCAL_REPO_ROOTS}" $(BIN)/juanie up
	@JUANIE_DEMO_DIR="$(DEMO_DIR)" $(BIN)/juanie demo up

down: $(STAMP)
	@$(BIN)/juanie down

services:
	@bash scripts/ensure-services.sh

lint: $(STAMP)
	@$(BIN)/ruff check .

fmt: $(STAMP)
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

# Two pytest workers, a test file each at a time: most of the long tests wait on real processes, not the CPU.
TEST_WORKERS ?= 2

test: $(STAMP) services
	@$(BIN)/ruff check .
	@$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Every bench, then the summary table (bench/README.md). rollback.py also promotes one canary with the default
# steps (~10 more minutes) so that every figure of the table comes from the same run.
bench: $(STAMP) services
	@status=0; for script in bench/*.py; do case "$$script" in */_*|*/summary.py) continue;; esac; \
	  args=""; case "$$script" in */rollback.py) args="--default-steps";; esac; \
	  echo "== $$script $$args"; $(BIN)/python $$script $$args || status=1; done; \
	  $(BIN)/python bench/summary.py; exit $$status

clean:
	rm -rf $(VENV) .juanie .juanie-demo .pytest_cache .ruff_cache
