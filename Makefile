# MedSynth: `make course` runs every chapter headless; `make test` runs the test suite.
# Both create .venv on first use (Python 3.10+, no conda needed) and reuse it afterwards.
PYTHON      ?= python3
VENV        ?= .venv
CONSTRAINTS ?= constraints.txt
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.medsynth-installed
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: env course test lint lab reference mutants bench clean-runs

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

# Lint and format check (ruff, configured in pyproject.toml), then the tests.
LINT_PATHS := lib tests data_scripts benchmarks notebooks
lint: $(STAMP)
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)

test: lint
	$(PY) -m pytest $(ARGS)

# Mutation testing of the core modules against the fast unit tests (slow; not part of `make test`).
mutants: $(STAMP)
	$(PY) tests/mutants.py $(ARGS)

# Speed/memory table of every chapter (quick + paper resolution) -> results/bench/<device>.json/.md; 1 CPU thread.
# e.g. make bench ARGS="--chapters 01 --settings quick --repeats 3"; ARGS="--reference ~/src/pix2pixHD ..."
bench: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) benchmarks/bench.py $(ARGS)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) benchmarks/bench_loader.py

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-runs:
	rm -rf runs/
