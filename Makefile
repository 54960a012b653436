# The two commands a newcomer needs: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PAGORECON_HOME ?= $(CURDIR)/.pagorecon-demo

.PHONY: demo test ui install

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/pagorecon demo

test: $(BIN)/.installed
	./scripts/ensure-postgres
	./scripts/ensure-rabbitmq
	./scripts/ensure-chromium
	$(BIN)/python -m pytest -q -n auto --dist loadfile

ui: $(BIN)/.installed
	DAGSTER_HOME=$(PAGORECON_HOME)/dagster DAGSTER_EVENT_BATCH_SIZE=1000 $(BIN)/dagster dev -w workspace.yaml
