# `make run` and `make test` work on a fresh machine: they create the virtual environment and
# install everything the project needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM := $(VENV)/.system

.PHONY: run test bench fmt check clean

$(SYSTEM): scripts/system-packages
	bash scripts/system-packages
	mkdir -p $(VENV) && touch $(SYSTEM)

$(STAMP): pyproject.toml $(SYSTEM)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/flowdesk check flows schemas
	$(BIN)/flowdesk compile flows schemas -o build/bundle.json
	$(BIN)/flowdesk test flows --coverage

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/compile_large.py

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
