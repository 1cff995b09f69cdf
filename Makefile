# The two commands a new machine needs: `make demo` and `make test` (both run the set-up first).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint typecheck fuzz

setup:
	bash scripts/setup.sh

demo: setup
	rm -rf demo-plate demo-out
	$(BIN)/hcs-import synth incell demo-plate --wells 96 --fields 2 --objects 40 --seed 1
	$(BIN)/hcs-import detect demo-plate
	$(BIN)/hcs-import plate demo-plate --out demo-out

lint: setup
	$(BIN)/ruff check src tests scripts $(wildcard benchmarks)

# mypy over src/ (configured in pyproject.toml: strict on the model, manifest, writers and parser interface).
typecheck: setup
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest

# The long fuzz run: 250 mutants of every format (tests/fuzz.py); FUZZ_SEED picks another set.
fuzz: setup
	FUZZ_MUTANTS=$${FUZZ_MUTANTS:-250} $(BIN)/python tests/fuzz.py
