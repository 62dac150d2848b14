# `make run` and `make test` work on a fresh machine: they create the virtual environment and
# install everything the project needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM := $(VENV)/.system

.PHONY: run test bench screenshots fmt check clean

$(SYSTEM): scripts/system-packages
	bash scripts/system-packages
	mkdir -p $(VENV) && touch $(SYSTEM)

$(STAMP): pyproject.toml $(SYSTEM)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The studio on the example project until Ctrl-C: demo log-ins printed, demo records in an empty
# CRM, and the clock started at 10:00 today in Shanghai so the hotline puts callers through to
# agents. When the Asterisk sandbox runs (scripts/asterisk-sandbox start) it answers real calls
# there, with the sandbox's password and agents' lines that pick up by themselves; otherwise the
# calls are simulated from the agent desktop.
run: export FLOWDESK_ARI_PASSWORD ?= flowdesk
run: export FLOWDESK_AGENT_DIAL ?= Local/{extension}@flowdesk-auto-agents/n
run: $(STAMP)
	$(BIN)/flowdesk check flows schemas
	$(BIN)/flowdesk compile flows schemas -o build/bundle.json
	$(BIN)/flowdesk test flows --coverage
	$(BIN)/flowdesk studio --project . --demo --telephony auto \
		--at "$$(TZ=Asia/Shanghai date +%F) 10:00" --tz Asia/Shanghai

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/compile_large.py

# PNGs of the studio's main pages in build/screenshots/, taken in headless chromium on a copy of
# the example project with the demo's records and calls (scripts/screenshots says what is shown).
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots --out build/screenshots

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
