# MedSynth: `make course` runs every chapter headless; `make test` runs the test suite.
# Both create .venv on first use (Python 3.10+, no conda needed) and reuse it afterwards.
PYTHON      ?= python3
VENV        ?= .venv
CONSTRAINTS ?= constraints.txt
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.medsynth-installed
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: env course test lab reference mutants clean-runs

env: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	@touch $@

course: $(STAMP)
	$(PY) -m medsynth.course $(ARGS)

# Reference runs (standard preset, several seeds) -> results/<chapter>/; e.g. make reference ARGS="--only 01"
reference: $(STAMP)
	$(PY) -m medsynth.reference $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

# Mutation testing of the core modules against the fast unit tests (slow; not part of `make test`).
mutants: $(STAMP)
	$(PY) tests/mutants.py $(ARGS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-runs:
	rm -rf runs/
