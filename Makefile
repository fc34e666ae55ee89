# The README's two commands: `make lab` and `make test`. Both (re)create .venv
# when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin
LAB_FLAGS := --notebook-dir=notebooks
ifeq ($(shell id -u),0)
LAB_FLAGS += --allow-root
endif

.PHONY: lab test bench fuzz venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "clusterkit needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

lab: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter lab $(LAB_FLAGS)

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks

# Coverage-guided fuzzing of every target (FUZZ_RUNS each); make test runs the same
# targets through hypothesis.
FUZZ_RUNS ?= 20000
fuzz: $(STAMP)
	$(BIN)/pip install --quiet -e '.[fuzz]'
	$(BIN)/python tests/atheris_fuzz.py all -atheris_runs=$(FUZZ_RUNS)

clean:
	rm -rf $(VENV) .pytest_cache
