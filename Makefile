# Two commands on a fresh clone: `make demo` and `make test`. Everything installs into ./.venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DATA_DIR ?= $(or $(SM_ASSETS_DATA_DIR),./data)
# With an s3:// data dir the local state (DuckDB file, DAGSTER_HOME) lives next to SM_ASSETS_DUCKDB_PATH.
LOCAL_DIR := $(if $(filter s3://%,$(DATA_DIR)),$(or $(dir $(SM_ASSETS_DUCKDB_PATH)),./data),$(DATA_DIR))
export DAGSTER_HOME ?= $(abspath $(LOCAL_DIR))/dagster_home

.PHONY: install demo demo-ui test lint dev refresh doctor clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/sm-assets demo

demo-ui: install
	$(BIN)/sm-assets demo --serve

test: install
	$(BIN)/ruff check sm_assets sm_assets_tests
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile --durations=15

lint: install
	$(BIN)/ruff check sm_assets sm_assets_tests
	$(BIN)/ruff format --check sm_assets sm_assets_tests

dev: install
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

refresh: install
	$(BIN)/sm-assets refresh

doctor: install
	$(BIN)/sm-assets doctor

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
